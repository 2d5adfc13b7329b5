"""Model persistence: ``<path>.npz`` (arrays) + ``<path>.json`` (manifest). No pickle."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from deepcuts._fileio import atomic_write_bytes, atomic_write_files, npz_bytes
from deepcuts._version import __version__
from deepcuts.exceptions import DeepcutsError

__all__ = ["FORMAT_VERSION", "atomic_write_bytes", "write_model_files", "read_model_files"]

FORMAT_VERSION = 1


def _paths(path) -> tuple[Path, Path]:
    p = Path(path)
    if p.suffix in (".npz", ".json"):
        p = p.with_suffix("")
    return p.with_suffix(".npz"), p.with_suffix(".json")


def write_model_files(path, manifest: dict, arrays: dict[str, np.ndarray]) -> Path:
    """Save arrays and manifest atomically; returns the manifest path."""
    npz_path, json_path = _paths(path)
    data = npz_bytes(arrays)
    manifest = {
        "format": "deepcuts-model",
        "format_version": FORMAT_VERSION,
        "deepcuts_version": __version__,
        **manifest,
        "arrays": sorted(arrays),
        "npz_file": npz_path.name,
        "npz_sha256": hashlib.sha256(data).hexdigest(),
    }
    text = json.dumps(manifest, indent=2, sort_keys=True).encode()
    atomic_write_files({npz_path: data, json_path: text})
    return json_path


def read_model_files(path) -> tuple[dict, dict[str, np.ndarray]]:
    """Load and verify a saved model; raises :class:`DeepcutsError` with the fix on problems."""
    npz_path, json_path = _paths(path)
    if not json_path.exists():
        raise DeepcutsError(f"{json_path}: model manifest not found; save a model there first")
    try:
        manifest = json.loads(json_path.read_text())
    except json.JSONDecodeError as e:
        raise DeepcutsError(f"{json_path}: not valid JSON ({e}); re-save the model") from None
    if manifest.get("format") != "deepcuts-model":
        raise DeepcutsError(f"{json_path}: not a deepcuts model manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise DeepcutsError(
            f"{json_path}: model format version {manifest.get('format_version')} is not supported "
            f"by deepcuts {__version__} (expects {FORMAT_VERSION}); retrain and save it again"
        )
    if not npz_path.exists():
        raise DeepcutsError(f"{npz_path}: model arrays not found next to the manifest")
    data = npz_path.read_bytes()
    if hashlib.sha256(data).hexdigest() != manifest.get("npz_sha256"):
        raise DeepcutsError(f"{npz_path}: checksum mismatch with {json_path.name}; file is corrupt")
    import io

    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    return manifest, arrays
