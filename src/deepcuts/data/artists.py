"""Artist-name normalisation: split collaboration credits and fold names to a matching key.

Listening data spells the same act many ways ("Beyoncé", "Beyonce", "BEYONCÉ  "), and songs
credit collaborations in one string ("Jay-Z feat. Rihanna", "50 Cent / Eminem"). deepcuts maps
every raw credit to one **artist key** used as the item id, and keeps a display name.

Rules (applied in this order):

1. **Split the credit** into artists at ``feat.``, ``feat``, ``ft.``, ``ft``, ``featuring``
   (any case, also inside brackets: ``"A (feat. B)"``, ``"A [ft. B]"``), at a slash with spaces
   around it (``"A / B"``) and at ``";"``. A slash without spaces is part of the name (``AC/DC``,
   ``Akron/Family``), and so are ``&``, ``and``, ``,``, ``vs.`` and ``with`` ("Earth, Wind &
   Fire", "Simon & Garfunkel"): deepcuts cannot tell a duo from a one-off pairing, so it keeps
   them whole. A part without any letter or digit is not split off (``"+ / -"`` stays whole).
2. **Credit the primary artist**: by default a song counts for the first artist of its credit
   only (``credit="primary"``); readers can instead divide each play equally between all
   credited artists (``credit="split"``), see :func:`artist_credits`.
3. **Fold to a key**: Unicode NFKD, accents removed from Latin, Greek and Cyrillic letters (not
   from kana or other scripts, where combining marks change the letter), curly quotes made
   straight, ``casefold``, whitespace collapsed. A leading ``"the "`` and a trailing ``", the"``
   are dropped, so "The Beatles", "Beatles, The" and "beatles" share the key ``"beatles"``
   (a name that is only "The" keeps it).

Normalisation works on distinct names (the vocabulary), never per listen, and is cached.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import numpy as np
import pandas as pd

__all__ = [
    "artist_credits",
    "artist_key",
    "normalize_artists",
    "primary_artist",
    "split_artists",
]

# "feat" words, possibly bracketed: "A feat. B", "A (ft. B)", "A [Featuring B]"
_FEAT = re.compile(r"\s*[\(\[]?\s*\b(?:featuring|feat\.?|ft\.?)(?=\s|$)\s*", re.IGNORECASE)
_SLASH = re.compile(r"\s+/\s+|\s*;\s*")
_WS = re.compile(r"\s+")
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u00b4": "'"})
_HAS_ALNUM = re.compile(r"\w")


def _strip_brackets(s: str) -> str:
    s = s.strip()
    # remove brackets left unbalanced by the split: "B)" -> "B", "(B" -> "B"
    if s.endswith((")", "]")) and s.count("(") + s.count("[") < s.count(")") + s.count("]"):
        s = s[:-1].rstrip()
    if s.startswith(("(", "[")) and s.count("(") + s.count("[") > s.count(")") + s.count("]"):
        s = s[1:].lstrip()
    return s


@lru_cache(maxsize=262144)
def split_artists(name: str) -> tuple[str, ...]:
    """Split a credit string into its artists (display form, stripped).

    Examples
    --------
    >>> split_artists("Jazzanova Feat. Ben Westbeech")
    ('Jazzanova', 'Ben Westbeech')
    >>> split_artists("50 Cent / Lloyd Banks / Eminem")
    ('50 Cent', 'Lloyd Banks', 'Eminem')
    >>> split_artists("Andre Nickatina (ft. Equipto)")
    ('Andre Nickatina', 'Equipto')
    >>> split_artists("AC/DC"), split_artists("Earth, Wind & Fire")
    (('AC/DC',), ('Earth, Wind & Fire',))
    """
    name = _WS.sub(" ", str(name)).strip()
    parts: list[str] = []
    for chunk in _SLASH.split(name):
        for p in _FEAT.split(chunk):
            p = _strip_brackets(p)
            if p:
                parts.append(p)
    if not parts or not all(_HAS_ALNUM.search(p) for p in parts):
        return (name,) if name else ()
    return tuple(parts)


def primary_artist(name: str) -> str:
    """The first artist of a credit (display form).

    >>> primary_artist("Alicia Keys featuring John Mayer")
    'Alicia Keys'
    """
    parts = split_artists(name)
    return parts[0] if parts else ""


def _keep_mark(base: str) -> bool:
    # accents are stripped only from Latin, Greek and Cyrillic letters
    return not base or ord(base) >= 0x0530


@lru_cache(maxsize=262144)
def artist_key(name: str) -> str:
    """Fold one artist name (not a credit: split first) to its matching key.

    Examples
    --------
    >>> artist_key("Beyoncé  Knowles"), artist_key("The Beatles"), artist_key("Beatles, The")
    ('beyonce knowles', 'beatles', 'beatles')
    >>> artist_key("Guns N’ Roses") == artist_key("guns n' roses")
    True
    >>> artist_key("ガゼット") == "ガゼット"
    True
    """
    s = unicodedata.normalize("NFKD", str(name).translate(_QUOTES))
    out = []
    base = ""
    for ch in s:
        if unicodedata.combining(ch):
            if _keep_mark(base):
                out.append(ch)
            continue
        base = ch
        out.append(ch)
    s = unicodedata.normalize("NFC", "".join(out)).casefold()
    s = _WS.sub(" ", s).strip()
    if s.endswith(", the") and len(s) > 5:
        s = s[:-5].rstrip()
    if s.startswith("the ") and len(s) > 4:
        s = s[4:].lstrip()
    return s


def artist_credits(name: str, *, credit: str = "primary") -> list[tuple[str, str, float]]:
    """Artists credited by one raw credit string: ``(key, display, share)`` triples.

    Parameters
    ----------
    name : str
        Raw credit, e.g. ``"A feat. B"``.
    credit : {"primary", "split"}, default="primary"
        ``"primary"`` gives the first artist share 1; ``"split"`` gives each of the ``k``
        distinct artists share ``1 / k``.

    Examples
    --------
    >>> artist_credits("Cam Feat. Anggun")
    [('cam', 'Cam', 1.0)]
    >>> artist_credits("Cam Feat. Anggun", credit="split")
    [('cam', 'Cam', 0.5), ('anggun', 'Anggun', 0.5)]
    """
    if credit not in ("primary", "split"):
        raise ValueError(f"credit must be 'primary' or 'split', got {credit!r}")
    parts = split_artists(name)
    if not parts:
        return []
    if credit == "primary":
        return [(artist_key(parts[0]), parts[0], 1.0)]
    seen: dict[str, str] = {}
    for p in parts:
        seen.setdefault(artist_key(p), p)
    share = 1.0 / len(seen)
    return [(k, d, share) for k, d in seen.items()]


def normalize_artists(names, *, credit: str = "primary") -> pd.DataFrame:
    """Normalise many raw credits at once (each distinct string is processed once).

    Parameters
    ----------
    names : array-like of str, shape (n,)
        Raw artist credits.
    credit : {"primary", "split"}, default="primary"
        See :func:`artist_credits`.

    Returns
    -------
    pandas.DataFrame
        Long format with columns ``row`` (position in ``names``), ``key``, ``display`` and
        ``share``; one row per credited artist (exactly one per name with ``"primary"``, none
        for an empty name).

    Examples
    --------
    >>> normalize_artists(["The Beatles", "Beatles feat. X"]).key.tolist()
    ['beatles', 'beatles']
    """
    codes, uniques = pd.factorize(pd.Series(np.asarray(names, dtype=object)), sort=False)
    rows_u, keys, disp, share = [], [], [], []
    for u, raw in enumerate(uniques):
        for k, d, s in artist_credits(str(raw), credit=credit):
            rows_u.append(u)
            keys.append(k)
            disp.append(d)
            share.append(s)
    per_u = pd.DataFrame(
        {"u": np.asarray(rows_u, np.int64), "key": keys, "display": disp, "share": share}
    )
    left = pd.DataFrame({"row": np.arange(len(codes), dtype=np.int64), "u": codes})
    out = left.merge(per_u, on="u", how="inner", sort=False).drop(columns="u")
    return out.sort_values("row", kind="stable").reset_index(drop=True)
