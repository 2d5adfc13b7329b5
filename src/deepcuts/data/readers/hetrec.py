"""Reader for HetRec 2011 Last.fm 2K (``user_artists.dat``, ``artists.dat``, tags)."""

from __future__ import annotations

import html
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from deepcuts.data.interactions import Interactions
from deepcuts.data.readers._common import numeric_column, read_delimited
from deepcuts.data.readers._stream import iter_blocks, parse_block
from deepcuts.exceptions import DataError

__all__ = ["read_hetrec_lastfm"]

log = logging.getLogger(__name__)


def _find(folder: Path, name: str) -> Path | None:
    for cand in (folder / name, folder / (name + ".gz")):
        if cand.exists():
            return cand
    return None


def _read_user_artists(path: Path, encoding: str, show_progress: bool) -> pd.DataFrame:
    """Stream ``user_artists.dat`` block by block; every bad value names its line and field."""
    cols = ["userID", "artistID", "weight"]
    parts = []
    for block in iter_blocks(path, encoding=encoding, show_progress=show_progress, desc=path.name):
        df = parse_block(block, cols, header_lines=1 if block.first_line == 1 else 0)
        out = {}
        for col, integer in (("userID", True), ("artistID", True), ("weight", False)):
            vals = pd.to_numeric(df[col], errors="coerce").to_numpy(np.float64)
            bad = ~np.isfinite(vals)
            if integer:
                bad |= np.isfinite(vals) & (vals != np.round(vals))
            else:
                bad |= vals < 0
            if bad.any():
                k = int(np.flatnonzero(bad)[0])
                kind = "an integer" if integer else "a number >= 0"
                raise DataError(
                    f"value {df[col].iloc[k]!r} is not {kind}; correct or remove this line",
                    path=path,
                    line=int(df["_line"].iloc[k]),
                    field=col,
                )
            out[col] = vals.astype(np.int64) if integer else vals
        parts.append(pd.DataFrame(out))
    ua = pd.concat(parts, ignore_index=True)
    if ua.empty:
        raise DataError("file has a header but no data rows; pass a file with data", path=path)
    return ua


def read_hetrec_lastfm(
    folder, *, n_tags: int = 5, encoding: str = "utf-8", show_progress: bool = False
) -> Interactions:
    """Read the HetRec 2011 Last.fm 2K folder into :class:`Interactions`.

    Parameters
    ----------
    folder : path
        Folder with ``user_artists.dat`` and ``artists.dat`` (plain or ``.gz``); ``tags.dat`` and
        ``user_taggedartists.dat`` are optional and give each artist its top tags.
    n_tags : int, default=5
        Number of most-used tags kept per artist.
    encoding : str, default="utf-8"
        Encoding of ``user_artists.dat`` and ``artists.dat`` (``tags.dat`` is latin-1, as
        distributed).
    show_progress : bool, default=False
        Show a tqdm progress bar while ``user_artists.dat`` is read.

    Returns
    -------
    Interactions
        Users x artists play counts; ``items`` has columns item, name, url, tags.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError("not a folder; pass the hetrec2011-lastfm-2k folder", path=folder)
    ua_path = _find(folder, "user_artists.dat")
    if ua_path is None:
        raise DataError("user_artists.dat not found in this folder", path=folder)
    ua = _read_user_artists(ua_path, encoding, show_progress)
    users, artists, weight = ua["userID"], ua["artistID"], ua["weight"]
    df = pd.DataFrame({"user": users, "item": artists, "count": weight})

    items = None
    a_path = _find(folder, "artists.dat")
    if a_path is not None:
        a = read_delimited(a_path, ["id", "name", "url", "pictureURL"], encoding=encoding)
        ids = numeric_column(a, "id", path=a_path, integer=True)
        items = pd.DataFrame(
            {"item": ids, "name": [html.unescape(s) for s in a["name"]], "url": a["url"]}
        )
        tags = _read_tags(folder, n_tags)
        if tags is not None:
            items["tags"] = items["item"].map(tags)
    # Items in index order = order of first appearance in user_artists.dat
    x = Interactions.from_frame(df, items=items)
    x.meta.update({"source": "hetrec2011-lastfm-2k", "path": str(folder)})
    log.info("read %s", x)
    return x


def _read_tags(folder: Path, n_tags: int) -> pd.Series | None:
    t_path, uta_path = _find(folder, "tags.dat"), _find(folder, "user_taggedartists.dat")
    if t_path is None or uta_path is None:
        return None
    tags = read_delimited(t_path, ["tagID", "tagValue"], encoding="latin-1")
    tag_ids = numeric_column(tags, "tagID", path=t_path, integer=True)
    tag_name = pd.Series(tags["tagValue"].to_numpy(), index=tag_ids)
    uta = read_delimited(uta_path, ["userID", "artistID", "tagID", "day", "month", "year"])
    pairs = pd.DataFrame(
        {
            "item": numeric_column(uta, "artistID", path=uta_path, integer=True),
            "tag": numeric_column(uta, "tagID", path=uta_path, integer=True),
        }
    )
    counts = pairs.groupby(["item", "tag"]).size().rename("n").reset_index()
    counts = counts.sort_values(["item", "n", "tag"], ascending=[True, False, True], kind="stable")
    top = counts.groupby("item").head(n_tags)
    top = top.assign(name=tag_name.reindex(top["tag"].to_numpy()).to_numpy())
    top = top[top["name"].notna()]
    return top.groupby("item")["name"].agg(list)


def tags_as_label(tags, k: int = 2) -> str:
    """Join the first ``k`` tags as a short label, e.g. ``"ambient / electronic"``."""
    if not isinstance(tags, list | tuple | np.ndarray) or len(tags) == 0:
        return ""
    return " / ".join(str(t) for t in list(tags)[:k])
