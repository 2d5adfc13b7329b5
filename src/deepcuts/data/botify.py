"""Reader for the Botify catalogue and simulated users (ITMO / VK "Recommender systems in
production" course, see ``../shared/data/botify/SOURCE.md``).

- ``tracks.json``: JSON lines ``{"artist", "title", "track"}``, track ids 0..n-1 (MSD taste
  profile top songs).
- ``users.json``: JSON lines ``{"user", "interests": [track ids], "consume_bias",
  "consume_sharpness"}``: the simulator's users.
- ``top_tracks.json``: a JSON list of track ids, most popular first.

Files may be gzip-compressed (``.json.gz``); the test copy in ``tests/data/botify`` is.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from deepcuts.data.artists import artist_key
from deepcuts.exceptions import DataError

__all__ = ["BotifyData", "read_botify"]


@dataclass(frozen=True, eq=False)
class BotifyData:
    """The Botify catalogue, its simulated users and the popularity order.

    Attributes
    ----------
    tracks : DataFrame
        Columns ``track`` (int, equal to the row number), ``artist``, ``title`` and
        ``artist_key`` (:func:`deepcuts.data.artists.artist_key` of the artist).
    users : DataFrame
        Columns ``user`` (int), ``interests`` (list of track ids), ``consume_bias``,
        ``consume_sharpness``.
    top_tracks : ndarray of shape (n_top,) int64
        Track ids, most popular first.
    """

    tracks: pd.DataFrame
    users: pd.DataFrame
    top_tracks: np.ndarray

    def __repr__(self) -> str:
        return (
            f"BotifyData(n_tracks={len(self.tracks)}, n_users={len(self.users)}, "
            f"n_top={len(self.top_tracks)})"
        )


def _find(root: Path, name: str) -> Path:
    for cand in (root / name, root / f"{name}.gz"):
        if cand.is_file():
            return cand
    raise DataError(
        f"{name} (or {name}.gz) not found; pass the folder that holds the Botify files",
        path=root,
    )


def _open(path: Path):
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path)


def _json_lines(path: Path, required: tuple[str, ...]) -> list[dict]:
    rows = []
    with _open(path) as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"not valid JSON ({e.msg})", path=path, line=n) from None
            missing = [k for k in required if k not in row]
            if missing:
                raise DataError(
                    f"record lacks {missing}; every line needs {list(required)}",
                    path=path,
                    line=n,
                    field=missing[0],
                )
            rows.append(row)
    if not rows:
        raise DataError("file holds no records", path=path)
    return rows


def read_botify(folder) -> BotifyData:
    """Read ``tracks.json``, ``users.json`` and ``top_tracks.json`` from ``folder``.

    Parameters
    ----------
    folder : str or Path
        E.g. ``../shared/data/botify``.

    Returns
    -------
    BotifyData

    Raises
    ------
    DataError
        Missing files, malformed lines (file and line named), track ids that are not
        0..n-1, or users / top tracks that refer to unknown tracks.
    """
    root = Path(folder)
    if not root.is_dir():
        raise DataError("not a folder; pass the folder that holds the Botify files", path=root)
    tpath = _find(root, "tracks.json")
    tracks = pd.DataFrame(_json_lines(tpath, ("track", "artist", "title")))
    tracks = tracks.sort_values("track", kind="stable").reset_index(drop=True)
    ids = tracks["track"].to_numpy()
    if not np.array_equal(ids, np.arange(len(ids))):
        raise DataError("track ids must be 0..n-1 without gaps or repeats", path=tpath)
    tracks["artist"] = tracks["artist"].astype(str)
    tracks["artist_key"] = [artist_key(a) for a in tracks["artist"]]
    tracks = tracks[["track", "artist", "title", "artist_key"]]

    upath = _find(root, "users.json")
    users = pd.DataFrame(
        _json_lines(upath, ("user", "interests", "consume_bias", "consume_sharpness"))
    )
    flat = np.concatenate([np.asarray(i, np.int64) for i in users["interests"]])
    if len(flat) and (flat.min() < 0 or flat.max() >= len(tracks)):
        raise DataError(
            f"interests refer to track ids outside 0..{len(tracks) - 1}; tracks.json and "
            "users.json must come from the same catalogue version",
            path=upath,
            field="interests",
        )
    users = users[["user", "interests", "consume_bias", "consume_sharpness"]]

    ppath = _find(root, "top_tracks.json")
    with _open(ppath) as f:
        try:
            top = np.asarray(json.load(f), dtype=np.int64)
        except (json.JSONDecodeError, ValueError, TypeError) as e:
            raise DataError(f"expected a JSON list of track ids ({e})", path=ppath) from None
    if top.ndim != 1 or (len(top) and (top.min() < 0 or top.max() >= len(tracks))):
        raise DataError(f"expected a JSON list of track ids in 0..{len(tracks) - 1}", path=ppath)
    return BotifyData(tracks, users, top)
