"""The HTTP API (FastAPI; the OpenAPI spec is served at ``/openapi.json``, docs at ``/docs``).

Errors are JSON objects ``{"error": "<one clear sentence>"}`` (plus ``"detail"`` for
validation errors) with a 4xx status: 400 bad value or knob, 404 unknown user or artist, 409
conflict (user exists, retrain running), 413 body too large, 422 invalid request fields;
401/403/415 from :mod:`deepcuts.serving._security` (token, cross-origin writes, body types).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

import orjson
from fastapi import FastAPI, File, Form, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from deepcuts._version import __version__
from deepcuts.exceptions import DeepcutsError, UnknownIdError
from deepcuts.serving._batch import Batcher
from deepcuts.serving._docs import document_errors, mount_docs
from deepcuts.serving._limits import MAX_OFFSET, check_retrain_params, check_upload
from deepcuts.serving._security import Guard, Security, scrub
from deepcuts.serving._validate import check_id, check_name, no_bool
from deepcuts.serving._writes import FastListens, GroupCommit
from deepcuts.serving.service import RECOMMEND_DEFAULTS, ConflictError, RecommenderService
from deepcuts.serving.store import MAX_ID, MAX_NAME, Listen

__all__ = ["MAX_BATCH", "create_app", "worker_app"]

log = logging.getLogger(__name__)

#: most listens in one batch request
MAX_BATCH = 10_000
#: default size limit of JSON request bodies and of history uploads, in bytes
MAX_BODY = 8 * 2**20
MAX_UPLOAD = 64 * 2**20


def _rule(check, **kw):
    """An AfterValidator applying ``check`` to a value as given (stripping happens later)."""

    def validate(value):
        if value is not None and (check is check_id or value.strip()):
            check(value, **kw)
        return value

    return validate


class ListenIn(BaseModel):
    """One listen."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "user": "ann",
                    "artist": "Radiohead",
                    "track": "Reckoner",
                    "listened_at": 1700000000,
                    "fraction": 0.9,
                }
            ]
        },
    )
    # the one rule for ids and names (deepcuts.serving._validate), worded in the 422
    user: Annotated[str, AfterValidator(_rule(check_id))] = Field(
        min_length=1, max_length=MAX_ID, description="external user id"
    )
    artist: Annotated[str, AfterValidator(_rule(check_name))] = Field(
        min_length=1, max_length=MAX_NAME, description="artist credit as written"
    )
    track: Annotated[
        str | None, AfterValidator(_rule(check_name, what="track title", field="track"))
    ] = Field(None, max_length=MAX_NAME, description="track title")
    listened_at: Annotated[int | None, BeforeValidator(no_bool)] = Field(
        None, ge=0, lt=2**42, description="unix seconds (UTC); default: now"
    )
    fraction: Annotated[float | None, BeforeValidator(no_bool)] = Field(
        None, ge=0.0, le=1.0, description="part of the track listened; default: unknown (= 1)"
    )

    def to_listen(self) -> Listen:
        return Listen(self.user, self.artist, self.track, self.listened_at, self.fraction)


class ListenBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    listens: list[ListenIn] = Field(min_length=1, max_length=MAX_BATCH)


class RetrainIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str | None = Field(None, description="registry name (als, itemknn, popularity...)")
    params: dict | None = Field(None, description="hyperparameters; default: the served ones")


class BodyLimit:
    """ASGI middleware: 413 for request bodies over the limit, before they are read whole."""

    def __init__(self, app: ASGIApp, *, max_body: int, max_upload: int):
        self.app, self.max_body, self.max_upload = app, max_body, max_upload

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)  # no body is read: nothing to limit
            return
        limit = self.max_upload if scope["path"].endswith("/history") else self.max_body
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            await _too_large(send, limit)
            return
        seen = 0
        sent = False

        async def limited() -> Message:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > limit:
                    raise _TooLarge(limit)
            return msg

        async def tracking_send(msg: Message) -> None:
            nonlocal sent
            if msg["type"] == "http.response.start":
                sent = True
            await send(msg)

        try:
            await self.app(scope, limited, tracking_send)
        except _TooLarge:
            if not sent:
                await _too_large(send, limit)


class _TooLarge(StarletteHTTPException):
    """Raised while reading a body over the limit (FastAPI re-raises HTTP exceptions)."""

    def __init__(self, limit: int):
        super().__init__(413, _too_large_message(limit))


_RECS_PATH = re.compile(r"^/users/([^/]+)/recommendations$")
_INT = re.compile(r"^[0-9]{1,6}$")
_FLOAT = re.compile(r"^-?[0-9]{1,6}(\.[0-9]{1,12})?$")
_BOOL = {"true": True, "false": False, "1": True, "0": False}


def _plain_knobs(query: bytes) -> dict | None:
    """The recommendation knobs of a plain, valid query string; ``None`` for anything else
    (percent-encoding, repeated or unknown names, odd spellings, values out of range), which
    the full route then validates and words the error for."""
    kw = dict(RECOMMEND_DEFAULTS)
    if not query:
        return kw
    seen = set()
    for part in query.split(b"&"):
        name, _, raw = part.partition(b"=")
        if b"%" in part or b"+" in part or not raw:
            return None
        try:
            name, value = name.decode("ascii"), raw.decode("ascii")
        except UnicodeDecodeError:
            return None
        if name in seen or name not in kw:
            return None
        seen.add(name)
        if name in ("n", "persona"):
            if not _INT.match(value):
                return None
            kw[name] = int(value)
        elif name in ("rarity", "diversity", "taste"):
            if not _FLOAT.match(value):
                return None
            kw[name] = float(value)
        elif name == "depth":  # a number in [0, 1] or "mine"; "mine+0.2" needs %2B: full route
            if value == "mine":
                kw[name] = value
            elif _FLOAT.match(value) and 0 <= float(value) <= 1:
                kw[name] = float(value)
            else:
                return None
        elif name == "floor":
            if not _INT.match(value) or int(value) < 1:
                return None
            kw[name] = int(value)
        elif name == "band":
            if len(value) > 40:
                return None
            kw[name] = value
        elif name == "exclude_played":
            if value.lower() not in _BOOL:
                return None
            kw[name] = _BOOL[value.lower()]
    if not 1 <= kw["n"] <= 200 or (kw["rarity"] is not None and not -3 <= kw["rarity"] <= 3):
        return None
    if kw["diversity"] is not None and not 0 <= kw["diversity"] <= 1:
        return None
    if kw["taste"] is not None and not 0 <= kw["taste"] <= 1:
        return None
    return kw


def _depth_value(depth: str | None):
    """A ``depth`` query value as the fast path passes it (a float when numeric) so both paths
    group and answer requests alike; anything else is validated by the re-ranker."""
    if depth is None:
        return None
    try:
        return float(depth)
    except ValueError:
        return depth


class FastRecommendations:
    """ASGI middleware: the hot path of ``GET /users/{user}/recommendations`` without the
    framework's routing, parameter validation and response classes.

    It answers only requests the full route would answer with 200 from memory: a plain query
    string of known knobs within their ranges (:func:`_plain_knobs`), a user answered from
    memory (model row or cached history), and a result without error. Everything else (bad or unusual
    input, errors, users whose history is read from the database) goes on to the FastAPI route,
    which validates, words the errors and documents the endpoint in the OpenAPI spec; a test
    checks that both give the same responses. On Last.fm 2K this halves the CPU time per
    request (the framework costs more than the batched ranking).
    """

    def __init__(self, app: ASGIApp, *, service: RecommenderService, batcher: Batcher, stats: dict):
        self.app, self.service, self.batcher, self.stats = app, service, batcher, stats

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and not scope.get("root_path"):
            m = _RECS_PATH.match(scope["path"])
            if m is not None:
                kw = _plain_knobs(scope["query_string"])
                user = m.group(1)
                if kw is not None and not self.service.needs_store(user):
                    try:
                        result = await self.batcher.submit((user, kw))
                    except Exception:  # noqa: BLE001 - the full route answers and words it
                        result = None
                    if result is not None:
                        body = orjson.dumps(result)
                        await send(
                            {
                                "type": "http.response.start",
                                "status": 200,
                                "headers": [
                                    (b"content-length", str(len(body)).encode()),
                                    (b"content-type", b"application/json"),
                                ],
                            }
                        )
                        await send({"type": "http.response.body", "body": body})
                        self.stats["fast_path"] += 1
                        return
        await self.app(scope, receive, send)


def _too_large_message(limit: int) -> str:
    return f"request body too large: the limit is {limit} bytes ({limit / 2**20:.0f} MiB)"


async def _too_large(send: Send, limit: int) -> None:
    body = json.dumps({"error": _too_large_message(limit)}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"connection", b"close")],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _validation_message(exc: RequestValidationError) -> tuple[int, str]:
    errs = exc.errors()
    for e in errs:
        if e.get("type") == "json_invalid":
            ctx = e.get("ctx") or {}
            return 400, f"request body is not valid JSON: {ctx.get('error', e.get('msg'))}"
    parts = []
    for e in errs[:5]:
        loc = ".".join(str(p) for p in e.get("loc", ()) if p not in ("body", "query", "path"))
        parts.append(f"{loc or 'body'}: {e.get('msg')}")
    more = f" (and {len(errs) - 5} more)" if len(errs) > 5 else ""
    return 422, "invalid request: " + "; ".join(parts) + more


def _json(payload) -> Response:
    """A JSON response encoded by orjson (~8x faster than ``json`` for a list of items)."""
    return Response(orjson.dumps(payload), media_type="application/json")


class _API(FastAPI):
    """FastAPI with ``POST /listens`` and ``GET .../recommendations`` answered in front of the
    framework's own layers.

    A listener's player posts one listen at a time, so this path carries the most requests:
    :attr:`fast_listens` (the security checks, then :class:`FastListens`) takes it before
    FastAPI's telemetry and error layers and Starlette's middleware stack (about 15 us of the
    ~100 us a request costs, issue 13). :attr:`fast_recommendations` (the security checks, then
    :class:`FastRecommendations`) does the same for recommendation requests, where those layers
    were about 5% of the server's CPU on the 384k-song catalogue (issue 15). Anything a fast
    path does not take goes on to the full stack, security checks included.
    """

    fast_listens: ASGIApp | None = None
    fast_recommendations: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path, method = scope["path"], scope["method"]
            if self.fast_listens is not None and path == "/listens" and method == "POST":
                await self.fast_listens(scope, receive, send)
                return
            if (
                self.fast_recommendations is not None
                and method == "GET"
                and path.endswith("/recommendations")
            ):
                await self.fast_recommendations(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def create_app(
    service: RecommenderService,
    *,
    max_body: int = MAX_BODY,
    max_upload: int = MAX_UPLOAD,
    start: bool = False,
    fast_path: bool = True,
    security: Security | None = None,
) -> FastAPI:
    """The FastAPI application serving ``service`` (API under ``/``, web page at ``/``).

    Parameters
    ----------
    service : RecommenderService
    max_body, max_upload : int
        Size limits (bytes) of JSON bodies and of history uploads; larger requests get 413.
    start : bool, default=False
        Call ``service.start()`` (load or train the model) when the app starts.
    fast_path : bool, default=True
        Answer plain recommendation requests in :class:`FastRecommendations` (same responses,
        about half the CPU time); ``False`` sends every request through the FastAPI routes.
    security : Security, optional
        Token, allowed hosts (:mod:`deepcuts.serving._security`); default: no token and no
        Host check. Cross-origin and non-JSON writes are refused in every case.
    """
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app):
        if start and service._handle is None:
            await run_in_threadpool(service.start)
        yield
        await run_in_threadpool(writer.close)  # commit what is queued

    app = _API(
        title="deepcuts",
        version=__version__,
        description="Music recommendations beyond the hits: listens in, recommendations out, "
        "with a depth (deep cuts) knob, personas and explanations.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    mount_docs(app)  # Swagger UI without a CDN
    document_errors(app)  # every error status in the spec
    hide = (str(service.data_dir.resolve()), str(service.data_dir))
    app.state.service = service
    batcher = Batcher(service.recommend_batch)
    writer = GroupCommit(service.add_listens)
    app.state.writer = writer
    app.state.batcher = batcher
    app.state.stats = {"fast_path": 0}

    @app.exception_handler(DeepcutsError)
    async def _deepcuts_error(request: Request, exc: DeepcutsError):
        status = getattr(exc, "http_status", 400)
        if isinstance(exc, UnknownIdError):
            status = 404
        elif isinstance(exc, ConflictError):
            status = 409
        return JSONResponse({"error": scrub(str(exc), *hide)}, status_code=status)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        return JSONResponse(
            {"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        status, msg = _validation_message(exc)
        detail = [
            {k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in exc.errors()[:20]
        ]
        return JSONResponse({"error": msg, "detail": detail}, status_code=status)

    # ------------------------------------------------------------------ system
    @app.get("/health", tags=["system"], summary="Service, model and retrain status")
    async def health():  # in memory: no thread hop
        out = service.health()
        if out.get("retrain") and out["retrain"].get("error"):
            out["retrain"]["error"] = scrub(out["retrain"]["error"], *hide)
        out["worker"] = {
            "pid": os.getpid(),
            "batches": batcher.batches,
            "batched_requests": batcher.requests,
            "fast_path_answers": app.state.stats["fast_path"],
        }
        return out

    @app.get("/models", tags=["system"], summary="The model registry, newest first")
    def models():
        rows = service.store.models()
        for r in rows:  # no server paths: model files are named relative to the data dir
            for k in ("path", "error"):
                if r.get(k):
                    r[k] = scrub(r[k], *hide)
        return {"models": rows}

    @app.post("/retrain", tags=["system"], status_code=202, summary="Train a new model")
    def retrain(body: RetrainIn | None = None):
        """Start training on everything stored, in the background; the new model replaces the
        served one when ready (no request fails during the swap). 409 while one runs."""
        body = body or RetrainIn()
        return service.retrain(body.model, check_retrain_params(body.params))

    @app.delete("/retrain", tags=["system"], summary="Cancel the running retrain")
    def retrain_cancel():
        """Stops the running retrain job (its training process is killed, its registry row
        marked failed); the served model stays. 409 when no retrain runs."""
        return service.cancel()

    @app.get("/retrain", tags=["system"], summary="Status of the latest retrain job")
    def retrain_status():
        job = service.job()
        if job is None:
            return JSONResponse({"error": "no retrain job was started"}, status_code=404)
        if job.get("error"):
            job["error"] = scrub(job["error"], *hide)
        return job

    # ------------------------------------------------------------------ listens
    @app.post("/listens", tags=["listens"], status_code=201, summary="Store one listen")
    async def post_listen(listen: ListenIn):
        """Answered once the listen is committed; concurrent posts share a transaction
        (group commit, :mod:`deepcuts.serving._writes`)."""
        return {"stored": await writer.submit(listen.to_listen())}

    @app.post(
        "/listens/batch", tags=["listens"], status_code=201, summary="Store many listens at once"
    )
    def post_listens(batch: ListenBatch):
        """All listens of the batch are stored in one transaction, or none (on error)."""
        return {"stored": service.add_listens([x.to_listen() for x in batch.listens])}

    @app.post(
        "/users/{user}/history",
        tags=["listens"],
        status_code=201,
        summary="Import a listening history (Last.fm, ListenBrainz, Spotify exports)",
    )
    def import_history(
        user: str,
        file: Annotated[
            UploadFile,
            File(
                description="Last.fm 1K TSV, Last.fm scrobble CSV, ListenBrainz JSON lines "
                "or JSON array, Spotify streaming history JSON or .zip"
            ),
        ],
        format: Annotated[
            Literal["lastfm1k", "lastfm-scrobbles", "listenbrainz", "spotify"], Form()
        ] = "listenbrainz",
        mode: Annotated[Literal["new", "merge", "replace"], Form()] = "new",
    ):
        """Stores the file's listens under ``user`` and folds them into the served model at
        once, without retraining. ``mode``: ``new`` (409 if the user exists), ``merge`` (add
        to the user's listens) or ``replace`` (replace the user's history). Size limit: see
        413 responses; errors name the uploaded file, never a server path."""
        suffix = "".join(Path(file.filename or "upload").suffixes[-2:])
        with tempfile.TemporaryDirectory(prefix="deepcuts-upload-") as tmp:
            path = Path(tmp) / f"history{suffix if len(suffix) < 20 else ''}"
            with open(path, "wb") as out:
                shutil.copyfileobj(file.file, out)
            shown = Path(file.filename or "upload").name[:200] or "upload"
            # the wire limit does not bound a .gz/.zip: inflate once, capped (413 over it)
            check_upload(path, max_upload, name=shown)
            return service.import_history(user, path, format, mode=mode, display_name=shown)

    # ------------------------------------------------------------------ users
    @app.get("/users", tags=["users"], summary="User ids (for choosing one)")
    def users(
        limit: Annotated[int, Query(ge=1, le=1000)] = 50,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    ):
        return {"users": service.users(limit=limit, offset=offset)}

    @app.get("/users/{user}/recommendations", tags=["users"], summary="Recommendations with knobs")
    async def recommendations(
        user: str,
        n: Annotated[int, Query(ge=1, le=200, description="list length")] = 10,
        rarity: Annotated[
            float | None,
            Query(
                ge=-3,
                le=3,
                description="expert (prefer depth): 1 neutral, < 1 favours rare artists, > 1 "
                "popular; uncalibrated, no evidence floor",
            ),
        ] = None,
        band: Annotated[
            str | None,
            Query(
                max_length=40,
                description="popularity percentile band LOW:HIGH, e.g. 0:80 (100 = most popular)",
            ),
        ] = None,
        diversity: Annotated[
            float | None, Query(ge=0, le=1, description="0 = none, 1 = most diverse")
        ] = None,
        persona: Annotated[int | None, Query(ge=0, description="recommend for one persona")] = None,
        exclude_played: Annotated[bool, Query(description="leave out played artists")] = True,
        depth: Annotated[
            str | None,
            Query(
                max_length=20,
                description="deep cuts: the share of the list from the long tail, 0 = the "
                "model's ranking, 1 = deepest; "
                "'mine' = the listener's own popularity level, 'mine+0.2' a step deeper "
                "(artists need at least `floor` listeners)",
            ),
        ] = None,
        floor: Annotated[
            int | None,
            Query(ge=1, le=1_000_000, description="with depth: fewest listeners (default 3)"),
        ] = None,
        taste: Annotated[
            float | None,
            Query(
                ge=0,
                le=1,
                description="with depth: weight of taste evidence when picking deep cuts (how "
                "much their listeners resemble the user; default 0.3, 0 = model score only)",
            ),
        ] = None,
    ):
        kw = dict(
            n=n,
            rarity=rarity,
            band=band,
            diversity=diversity,
            persona=persona,
            exclude_played=exclude_played,
            depth=_depth_value(depth),
            floor=floor,
            taste=taste,
        )
        # JSONResponse directly: the payload is plain JSON types already, and FastAPI's
        # generic encoder would cost more than computing the recommendations
        if service.needs_store(user):
            return _json(await run_in_threadpool(lambda: service.recommend(user, **kw)))
        # fast path (in memory, no I/O): concurrent requests are ranked together
        return _json(await batcher.submit((user, kw)))

    @app.get("/users/{user}/personas", tags=["users"], summary="The user's personas")
    def personas(user: str, n: Annotated[int, Query(ge=1, le=100)] = 10):
        return service.personas(user, n=n)

    @app.get(
        "/users/{user}/explanations/{artist}",
        tags=["users"],
        summary="Why an artist is recommended to a user",
    )
    def explanation(user: str, artist: str, n: Annotated[int, Query(ge=1, le=50)] = 5):
        return service.explain(user, artist, n=n)

    # ------------------------------------------------------------------ artists
    @app.get("/artists/{artist}/similar", tags=["artists"], summary="Similar artists")
    def similar(artist: str, n: Annotated[int, Query(ge=1, le=200)] = 10):
        return service.similar(artist, n=n)

    @app.get("/popularity", tags=["artists"], summary="The popularity curve (long tail)")
    def popularity():
        return service.curve()

    # ------------------------------------------------------------------ web page
    static = Path(str(resources.files("deepcuts.serving") / "static"))
    if (static / "index.html").exists():
        app.mount("/static", StaticFiles(directory=static), name="static")

        @app.get("/", include_in_schema=False)
        def index():
            return FileResponse(static / "index.html")

    app.add_middleware(BodyLimit, max_body=max_body, max_upload=max_upload)
    app.add_middleware(Guard, security=security or Security())  # outermost: before anything
    full_stack = super(_API, app).__call__  # what the fast paths do not take
    if fast_path:
        app.fast_recommendations = Guard(
            FastRecommendations(full_stack, service=service, batcher=batcher,
                                stats=app.state.stats),
            security=security or Security(),
        )  # fmt: skip
    app.fast_listens = Guard(
        FastListens(full_stack, writer=writer, stats=app.state.stats),
        security=security or Security(),
    )
    return app


#: environment variable carrying the configuration of ``deepcuts serve --workers N`` workers
WORKER_CONFIG_ENV = "DEEPCUTS_SERVE_CONFIG"


def worker_app() -> FastAPI:
    """The app of one worker process of ``deepcuts serve --workers N`` (a uvicorn factory).

    Configured by the JSON in ``$DEEPCUTS_SERVE_CONFIG`` (written by the parent process:
    database URL, data directory, model, event log, upload limit). Each worker loads the
    registry's active model and follows the shared event log (:mod:`deepcuts.serving._shared`).
    """
    from threadpoolctl import threadpool_limits

    from deepcuts.serving._shared import EventLog
    from deepcuts.serving.store import Store

    cfg = json.loads(os.environ[WORKER_CONFIG_ENV])
    threadpool_limits(1, user_api="blas")
    service = RecommenderService(
        Store(cfg["url"]),
        cfg["data_dir"],
        model=cfg["model"],
        model_params=cfg["params"],
        seed=False,
        freeze_gc=True,
        events=EventLog(cfg["events"]),
    )
    service.start()
    security = Security(
        token=cfg.get("token"),
        allowed_hosts=None if cfg.get("allowed_hosts") is None else tuple(cfg["allowed_hosts"]),
    )
    return create_app(service, max_upload=int(cfg["max_upload"]), security=security)
