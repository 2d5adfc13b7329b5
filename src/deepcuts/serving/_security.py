"""Who may write: token auth, cross-origin writes, the Host header, and what errors reveal.

:class:`Guard` is an ASGI middleware in front of the whole app:

* **allowed hosts** (DNS rebinding): a request whose ``Host`` header names none of the
  allowed hosts gets 400. ``deepcuts serve`` allows ``localhost``, ``127.0.0.1`` and ``::1``
  (any port) plus the address it listens on, and ``--allowed-host NAME`` more; a page on a
  rebound name (``evil.example`` -> 127.0.0.1) is then refused.
* **cross-origin writes**: a write (any method but GET, HEAD, OPTIONS) sent by a browser from
  another origin is refused with 403: ``Sec-Fetch-Site: cross-site`` or ``same-site``, or an
  ``Origin`` header whose host differs from the ``Host`` header (``Origin: null`` included).
  Writes must also carry a JSON body (``Content-Type: application/json``) or, for history
  uploads, ``multipart/form-data``: the "simple" ``text/plain`` and form posts that a page may
  send to any site without asking get 415.
* **token**: with a token configured (``deepcuts serve --token``, ``$DEEPCUTS_API_TOKEN``),
  writes and the admin endpoints (:data:`ADMIN_PATHS`) need ``Authorization: Bearer TOKEN``;
  401 otherwise. ``deepcuts serve`` refuses to listen beyond loopback without one. Reads stay
  open, and the web page keeps working on loopback without a token.

:func:`scrub` removes server paths (upload temp folders, the data directory) from messages.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import re
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = [
    "ADMIN_PATHS",
    "LOOPBACK_HOSTS",
    "Guard",
    "Security",
    "is_loopback",
    "scrub",
]

#: host names that always reach this machine only
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
#: read endpoints that need the token too (when one is set): the registry and retrain status
ADMIN_PATHS = ("/models", "/retrain")
_SAFE = ("GET", "HEAD", "OPTIONS")
#: environment variable read by ``deepcuts serve`` for the token
TOKEN_ENV = "DEEPCUTS_API_TOKEN"


def is_loopback(host: str) -> bool:
    """True for an address or name that only this machine can reach.

    >>> is_loopback("127.0.0.1"), is_loopback("localhost"), is_loopback("0.0.0.0")
    (True, True, False)
    """
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Security:
    """What :class:`Guard` enforces.

    Parameters
    ----------
    token : str or None
        Bearer token for writes and admin endpoints; ``None``: none needed.
    allowed_hosts : tuple of str or None
        Host names accepted in the ``Host`` header (without port; ``"*"`` accepts all);
        ``None`` checks nothing (an app embedded in tests or another server).
    """

    token: str | None = None
    allowed_hosts: tuple[str, ...] | None = None

    @classmethod
    def for_listener(cls, host: str, *, token=None, allowed_hosts=()) -> Security:
        """The settings of a server listening on ``host``: loopback names plus ``host`` and
        ``allowed_hosts``; a wildcard address (``0.0.0.0``) with no allowed host named
        accepts every host name (the token guards the writes)."""
        names = [h.lower().strip("[]") for h in allowed_hosts]
        wildcard = host in ("0.0.0.0", "::", "")
        if wildcard and not names:
            names = ["*"]
        elif not wildcard:
            names.append(host.lower().strip("[]"))
        return cls(
            token=token or None, allowed_hosts=tuple(dict.fromkeys([*LOOPBACK_HOSTS, *names]))
        )


def _host_name(value: str) -> str:
    """``host[:port]`` -> host, for names, IPv4 and bracketed IPv6."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


async def _refuse(send: Send, status: int, message: str, headers=()) -> None:
    body = json.dumps({"error": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class Guard:
    """ASGI middleware enforcing :class:`Security` (see the module docstring)."""

    def __init__(self, app: ASGIApp, *, security: Security):
        self.app, self.security = app, security

    def check(self, scope: Scope) -> tuple[int, str, list] | None:
        """``None`` when the request may go on, else (status, message, extra headers)."""
        headers = {}
        for k, v in scope.get("headers") or []:
            headers.setdefault(k.decode("latin-1").lower(), v.decode("latin-1"))
        sec = self.security
        host = headers.get("host", "")
        if sec.allowed_hosts is not None and "*" not in sec.allowed_hosts:
            if _host_name(host) not in sec.allowed_hosts:
                return (
                    400,
                    f"host {host[:100]!r} is not allowed (allowed: "
                    f"{', '.join(sec.allowed_hosts)}); use one of them, or start the server "
                    "with --allowed-host NAME",
                    [],
                )
        method, path = scope["method"], scope["path"]
        write = method not in _SAFE
        if write:
            site = headers.get("sec-fetch-site")
            origin = headers.get("origin")
            if site in ("cross-site", "same-site"):
                return 403, f"cross-origin write refused (Sec-Fetch-Site: {site})", []
            if origin is not None:
                m = re.match(r"^[a-z][a-z0-9+.-]*://([^/]+)$", origin.strip().lower())
                if m is None or m.group(1) != host.strip().lower():
                    return (
                        403,
                        f"cross-origin write refused: Origin {origin[:100]!r} is not this "
                        f"server ({host[:100]!r})",
                        [],
                    )
            ctype = headers.get("content-type", "").split(";")[0].strip().lower()
            upload = path.endswith("/history")
            length = headers.get("content-length")
            empty = length == "0" or (length is None and "transfer-encoding" not in headers)
            if upload and ctype != "multipart/form-data":
                return 415, "history uploads must be sent as multipart/form-data", []
            if not upload and not (
                ctype == "application/json"
                or (ctype.startswith("application/") and ctype.endswith("+json"))
                or (ctype == "" and empty)
            ):
                return (
                    415,
                    f"writes take a JSON body: send Content-Type: application/json "
                    f"(got {ctype or 'none'!r})",
                    [],
                )
        if sec.token is not None and (write or path in ADMIN_PATHS):
            auth = headers.get("authorization", "")
            scheme, _, given = auth.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                given.strip().encode(), sec.token.encode()
            ):
                return (
                    401,
                    "this endpoint needs the server's token: send Authorization: Bearer TOKEN "
                    "(deepcuts serve --token / $DEEPCUTS_API_TOKEN)",
                    [(b"www-authenticate", b'Bearer realm="deepcuts"')],
                )
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refused = self.check(scope)
            if refused is not None:
                await _refuse(send, *refused)
                return
        await self.app(scope, receive, send)


_UPLOAD_DIR = re.compile(r"/[^\s'\"]*?deepcuts-upload-[^/\s'\"]+/")


def scrub(text: str, *paths) -> str:
    """``text`` without server paths: upload temp folders and the given folders (the data
    directory) are cut from it.

    >>> scrub("/tmp/deepcuts-upload-ab12/history.jsonl, line 3: bad", "/srv/data")
    'history.jsonl, line 3: bad'
    >>> scrub("cannot load /srv/data/models/model-3", "/srv/data")
    'cannot load models/model-3'
    """
    text = _UPLOAD_DIR.sub("", str(text))
    for p in paths:
        p = str(p).rstrip("/")
        if p:
            text = text.replace(p + "/", "").replace(p, "<data dir>")
    return text
