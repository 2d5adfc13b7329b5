"""Saving and loading :class:`~deepcuts.data.Interactions`: ``<stem>.npz`` + ``<stem>.json``.

The ``.npz`` holds every array (CSR matrix, id maps, timestamps, item metadata columns); the JSON
manifest describes them (format name and version, shapes, the column kinds, ``meta``) and holds the
SHA-256 of the ``.npz`` so a truncated or mismatched pair is detected. Both files are written
atomically and together; nothing is pickled.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from deepcuts._fileio import atomic_write_files, json_default, npz_bytes
from deepcuts._version import __version__
from deepcuts.data.idmap import IdMap
from deepcuts.exceptions import DataError

__all__ = ["INTERACTIONS_FORMAT", "INTERACTIONS_VERSION", "interactions_paths"]

INTERACTIONS_FORMAT = "deepcuts-interactions"
INTERACTIONS_VERSION = 1


def interactions_paths(path) -> tuple[Path, Path]:
    """``(<stem>.npz, <stem>.json)`` for ``path`` given with or without either suffix."""
    p = Path(path)
    if p.suffix in (".npz", ".json"):
        p = p.with_suffix("")
    return p.with_name(p.name + ".npz"), p.with_name(p.name + ".json")


def _ids_array(m: IdMap) -> tuple[np.ndarray, str]:
    ids = m.ids
    if ids.dtype.kind in "iu":
        return ids.astype(np.int64), "int"
    if ids.dtype == object and len(ids) and all(isinstance(v, int | np.integer) for v in ids):
        return ids.astype(np.int64), "int"
    if ids.dtype == object and any(not isinstance(v, str) for v in ids):
        kinds = sorted({type(v).__name__ for v in ids})
        raise DataError(
            f"{m.name} ids mix types {kinds}; convert them all to str (or all to int) before saving",
            field=m.name,
        )
    return ids.astype(str), "str"


def _list_column(values) -> tuple[np.ndarray, np.ndarray]:
    lists = [list(v) if isinstance(v, list | tuple | np.ndarray) else [] for v in values]
    ptr = np.zeros(len(lists) + 1, dtype=np.int64)
    np.cumsum([len(v) for v in lists], out=ptr[1:])
    flat = np.array([str(t) for v in lists for t in v], dtype=str)
    return ptr, flat


def _encode_items(items: pd.DataFrame, arrays: dict) -> list[dict]:
    cols = []
    for k, name in enumerate(c for c in items.columns if c != "item"):
        col = items[name]
        key = f"item_col{k}"
        if pd.api.types.is_bool_dtype(col) or pd.api.types.is_numeric_dtype(col):
            arrays[key] = col.to_numpy()
            kind = "numeric"
        elif col.map(lambda v: isinstance(v, list | tuple | np.ndarray)).any():
            arrays[key + "_ptr"], arrays[key] = _list_column(col)
            kind = "list"
        else:
            na = col.isna().to_numpy()
            arrays[key] = col.where(~na, "").astype(str).to_numpy(dtype=str)
            if na.any():
                arrays[key + "_na"] = na
            kind = "str"
        cols.append({"name": str(name), "key": key, "kind": kind})
    return cols


def _json_default(o):
    """NumPy values as plain JSON; anything else in ``meta`` is stored as its ``str``."""
    try:
        return json_default(o)
    except TypeError:
        return str(o)


def save_interactions(x, path) -> Path:
    """Write ``x`` to ``<stem>.npz`` + ``<stem>.json``; returns the manifest path."""
    npz_path, json_path = interactions_paths(path)
    m = x.matrix
    users, user_kind = _ids_array(x.user_map)
    items, item_kind = _ids_array(x.item_map)
    arrays = {
        "users": users,
        "items": items,
        "indptr": m.indptr.astype(np.int64),
        "indices": m.indices.astype(np.int32),
        "data": m.data.astype(np.float32),
    }
    if x.timestamps is not None:
        arrays["timestamps"] = np.asarray(x.timestamps, dtype=np.int64)
    columns = _encode_items(x.items, arrays) if x.items is not None else None
    data = npz_bytes(arrays)
    manifest = {
        "format": INTERACTIONS_FORMAT,
        "format_version": INTERACTIONS_VERSION,
        "deepcuts_version": __version__,
        "n_users": x.n_users,
        "n_items": x.n_items,
        "nnz": x.nnz,
        "user_ids": user_kind,
        "item_ids": item_kind,
        "timestamps": x.timestamps is not None,
        "item_columns": columns,
        "meta": json.loads(json.dumps(x.meta, default=_json_default)),
        "npz_file": npz_path.name,
        "npz_sha256": hashlib.sha256(data).hexdigest(),
    }
    text = json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8")
    atomic_write_files({npz_path: data, json_path: text})
    return json_path


def read_manifest(path) -> tuple[dict, Path, Path]:
    """Read and check an interactions manifest; returns ``(manifest, npz_path, json_path)``."""
    npz_path, json_path = interactions_paths(path)
    if not json_path.exists():
        raise DataError(
            "saved interactions not found; create them with `deepcuts ingest ... -o "
            f"{json_path.with_suffix('')}` or Interactions.save",
            path=json_path,
        )
    try:
        manifest = json.loads(json_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(
            f"not a valid JSON manifest ({e}); ingest the data again", path=json_path
        ) from None
    if not isinstance(manifest, dict) or manifest.get("format") != INTERACTIONS_FORMAT:
        what = manifest.get("format") if isinstance(manifest, dict) else None
        hint = " (this is a saved model; pass it to --model)" if what == "deepcuts-model" else ""
        raise DataError(
            f"not a deepcuts interactions manifest{hint}; create one with `deepcuts ingest`",
            path=json_path,
        )
    version = manifest.get("format_version")
    if version != INTERACTIONS_VERSION:
        raise DataError(
            f"interactions format version {version} is not supported by deepcuts {__version__} "
            f"(it reads version {INTERACTIONS_VERSION}); ingest the source data again with this "
            f"version",
            path=json_path,
            field="format_version",
        )
    return manifest, npz_path, json_path


def load_interactions(path, cls):
    """Load what :func:`save_interactions` wrote, verifying the checksum and shapes."""
    manifest, npz_path, json_path = read_manifest(path)
    if not npz_path.exists():
        raise DataError(
            f"arrays file missing next to {json_path.name}; copy both files together",
            path=npz_path,
        )
    data = npz_path.read_bytes()
    if hashlib.sha256(data).hexdigest() != manifest.get("npz_sha256"):
        raise DataError(
            f"checksum does not match {json_path.name}: the file is truncated or from another "
            f"save; ingest the data again",
            path=npz_path,
        )
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            a = {k: z[k] for k in z.files}
    except (ValueError, OSError) as e:
        raise DataError(f"cannot read arrays ({e}); ingest the data again", path=npz_path) from None
    n_users, n_items = int(manifest["n_users"]), int(manifest["n_items"])
    try:
        matrix = sp.csr_matrix((a["data"], a["indices"], a["indptr"]), shape=(n_users, n_items))
        matrix.check_format(full_check=True)
        users = IdMap(a["users"], name="user")
        items_map = IdMap(a["items"], name="item")
    except (KeyError, ValueError) as e:
        raise DataError(
            f"inconsistent arrays ({e}); ingest the data again", path=npz_path
        ) from None
    items = None
    if manifest.get("item_columns") is not None:
        items = pd.DataFrame({"item": items_map.ids})
        for c in manifest["item_columns"]:
            key, kind = c["key"], c["kind"]
            if kind == "list":
                ptr, flat = a[key + "_ptr"], a[key].astype(object)
                items[c["name"]] = [flat[ptr[j] : ptr[j + 1]].tolist() for j in range(n_items)]
            elif kind == "str":
                col = pd.Series(a[key].astype(object))
                if key + "_na" in a:
                    col[a[key + "_na"]] = None
                items[c["name"]] = col
            else:
                items[c["name"]] = a[key]
    timestamps = a.get("timestamps") if manifest.get("timestamps") else None
    x = cls(matrix, users, items_map, items=items, timestamps=timestamps)
    x.meta.update(manifest.get("meta") or {})
    return x
