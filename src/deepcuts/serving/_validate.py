"""The one rule for ids and names the service stores, the same on SQLite and PostgreSQL.

A user id has 1 to :data:`MAX_ID` characters, an artist name or track title 1 to
:data:`MAX_NAME` (the column sizes), counted after stripping surrounding white space, and
none of them holds a control character (NUL, tab, newline, DEL, C1 controls: Unicode category
``Cc``) or a lone surrogate (``Cs``, which neither database can encode). The rule is checked
before any database access (:meth:`Store.add_listens <deepcuts.serving.store.Store>`, the
service's user lookups), so both back-ends answer alike, with a 4xx naming the rule.
"""

from __future__ import annotations

import re

from deepcuts.exceptions import DataError

__all__ = ["ID_RULE", "MAX_ID", "MAX_NAME", "NAME_RULE", "check_id", "check_name", "no_bool"]

#: longest accepted user id, and artist name or track title (the column sizes)
MAX_ID, MAX_NAME = 200, 300
ID_RULE = f"1 to {MAX_ID} characters, no control characters (NUL, tab, newline) or surrogates"
NAME_RULE = f"1 to {MAX_NAME} characters, no control characters (NUL, tab, newline) or surrogates"
# Cc: U+0000-U+001F, U+007F-U+009F; Cs: U+D800-U+DFFF
_BAD = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def _check(value, what: str, field: str, limit: int, rule: str) -> str:
    if not isinstance(value, str):
        raise DataError(f"{what} must be a string: {rule}", field=field)
    s = value.strip()
    bad = _BAD.search(s)
    if not s or len(s) > limit or bad is not None:
        why = (
            "is empty"
            if not s
            else f"has {len(s)} characters"
            if len(s) > limit
            else f"holds the control character U+{ord(bad.group()):04X} at position {bad.start()}"
        )
        raise DataError(f"{what} {why}; the rule is {rule}", field=field)
    return s


def check_id(value, *, what: str = "user id", field: str = "user") -> str:
    """The stripped id, or :class:`DataError` naming the rule.

    >>> check_id(" ann ")
    'ann'
    >>> check_id("a\\x00b")
    Traceback (most recent call last):
    ...
    deepcuts.exceptions.DataError: field 'user': user id holds the control character U+0000 at position 1; the rule is 1 to 200 characters, no control characters (NUL, tab, newline) or surrogates
    """
    return _check(value, what, field, MAX_ID, ID_RULE)


def check_name(value, *, what: str = "artist name", field: str = "artist") -> str:
    """The stripped artist name or track title, or :class:`DataError` naming the rule.

    >>> check_name("Radiohead")
    'Radiohead'
    """
    return _check(value, what, field, MAX_NAME, NAME_RULE)


def no_bool(value):
    """Pydantic "before" validator: refuse JSON booleans where a number is expected (pydantic
    would read ``false`` as 0).

    >>> no_bool(0.5)
    0.5
    """
    if isinstance(value, bool):
        raise ValueError("a number is expected, not a boolean")
    return value
