"""Song-to-artist aggregation of track-level interactions."""

from __future__ import annotations

import numpy as np
import pandas as pd

from deepcuts.data.idmap import IdMap
from deepcuts.data.interactions import Interactions
from deepcuts.data.readers._stream import PairAccumulator
from deepcuts.exceptions import DataError

__all__ = ["aggregate_to_artists"]


def aggregate_to_artists(
    x: Interactions, *, artist_col: str = "artist", name_col: str = "artist_name"
) -> Interactions:
    """Sum track-level play counts per (user, artist).

    Parameters
    ----------
    x : Interactions
        Track-level data whose ``items`` has an ``artist_col`` column (artist key), e.g. from
        a reader with ``level="track"``.
    artist_col : str, default="artist"
        Column of ``x.items`` naming each track's artist; it becomes the new item id.
    name_col : str, default="artist_name"
        Column with the artist display name (the key is used when absent).

    Returns
    -------
    Interactions
        Users unchanged; items are artists in order of first appearance in ``x.items``;
        ``timestamps`` (if any) are the latest over the artist's tracks.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"user": ["u", "u", "v"], "item": ["s1", "s2", "s2"], "count": [1, 2, 4]})
    >>> meta = pd.DataFrame({"item": ["s1", "s2"], "artist": ["abba", "abba"]})
    >>> y = aggregate_to_artists(Interactions.from_frame(df, items=meta))
    >>> y.item_map.ids.tolist(), y.matrix.toarray().tolist()
    (['abba'], [[3.0], [4.0]])
    """
    if x.items is None or artist_col not in x.items.columns:
        raise DataError(
            f"items have no {artist_col!r} column; read the data with level='track' or pass "
            f"artist_col=",
            field=artist_col,
        )
    art = x.items[artist_col]
    if art.isna().any():
        k = int(np.flatnonzero(art.isna().to_numpy())[0])
        raise DataError(f"item {x.item_map.ids[k]!r} has no artist", field=artist_col)
    codes, keys = pd.factorize(art, sort=False)
    m = x.matrix
    rows = np.repeat(np.arange(x.n_users, dtype=np.int64), np.diff(m.indptr))
    acc = PairAccumulator(with_time=x.timestamps is not None)
    acc.add(rows, codes[m.indices], m.data, x.timestamps)
    matrix, ts = acc.result((x.n_users, len(keys)))
    names = (
        x.items[name_col].groupby(codes).first().to_numpy(dtype=object)
        if name_col in x.items.columns
        else np.asarray(keys, dtype=object).astype(str)
    )
    items = pd.DataFrame({"item": np.asarray(keys, dtype=object), "name": names})
    items["tags"] = [[] for _ in range(len(items))]
    y = Interactions(
        matrix,
        x.user_map,
        IdMap(items["item"].to_numpy(), name="item"),
        items=items,
        timestamps=ts,
        meta=dict(x.meta),
    )
    y.meta["level"] = "artist"
    return y
