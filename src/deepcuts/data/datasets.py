"""Datasets bundled with deepcuts (usable from a fresh clone or a pip install)."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

from deepcuts.data.interactions import Interactions

__all__ = ["load_lastfm2k", "bundled_path", "shared_data_path"]


def bundled_path(name: str = "lastfm2k") -> Path:
    """Folder of a bundled dataset inside the installed package."""
    return Path(str(resources.files("deepcuts") / "datasets" / name))


@lru_cache(maxsize=2)
def _load(n_tags: int) -> Interactions:
    from deepcuts.data.readers.hetrec import read_hetrec_lastfm

    return read_hetrec_lastfm(bundled_path("lastfm2k"), n_tags=n_tags)


def load_lastfm2k(*, n_tags: int = 5) -> Interactions:
    """HetRec 2011 Last.fm 2K, bundled: 1,892 users x 17,632 artists, 92,834 play counts.

    Non-commercial use only (see ``datasets/lastfm2k/SOURCE.md``).

    Examples
    --------
    >>> x = load_lastfm2k()
    >>> x.shape, x.nnz
    ((1892, 17632), 92834)
    """
    return _load(n_tags)


def shared_data_path(name: str) -> Path | None:
    """``../shared/data/<name>`` relative to the working directory or repo, if it exists."""
    here = Path(__file__).resolve()
    for base in [Path.cwd(), *Path.cwd().parents, *here.parents]:
        cand = base / "shared" / "data" / name
        if cand.is_dir():
            return cand
        cand = base.parent / "shared" / "data" / name
        if cand.is_dir():
            return cand
    return None
