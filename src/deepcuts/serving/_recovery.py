"""What a server start cleans up after a server that was killed during a retrain.

A retrain registers its model as ``training`` and its child process writes
``models/model-<id>.{npz,json}`` (through temporary ``.model-<id>.*.tmp`` files). When the
server dies (``kill -9``, a crash, a reboot) the child dies with it
(:mod:`deepcuts.serving._retrain`), and the next start calls :func:`recover`: rows still
``training`` are marked ``failed``, and model files that no ``ready`` row points to are
removed. Files with other names are left alone.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

__all__ = ["recover"]

log = logging.getLogger(__name__)

_MODEL_FILE = re.compile(r"^(?:model-(\d+)\.(?:npz|json)|\.model-(\d+)\.(?:npz|json)\..*\.tmp)$")


def recover(store, data_dir) -> dict:
    """Mark stale ``training`` rows failed and remove orphan model files.

    Call it only where no retrain of this server can be running: at the start of the one
    process of a server (``deepcuts serve``, or the parent of ``--workers N`` before the
    workers start).

    Returns
    -------
    dict
        ``{"failed": [ids], "removed": [file names]}``.

    Examples
    --------
    >>> import tempfile
    >>> from deepcuts.serving.store import Store
    >>> store = Store("sqlite://")
    >>> mid = store.register_model("als", {})
    >>> d = Path(tempfile.mkdtemp())
    >>> (d / "models").mkdir()
    >>> _ = (d / "models" / f"model-{mid}.npz").write_bytes(b"half")
    >>> recover(store, d)
    {'failed': [1], 'removed': ['model-1.npz']}
    """
    failed = store.fail_stale_models("interrupted: the server stopped during the training")
    if failed:
        log.warning("marked interrupted retrain model(s) %s failed", failed)
    folder = Path(data_dir) / "models"
    removed = []
    if folder.is_dir():
        keep = {
            Path(m["path"]).resolve()
            for m in store.models()
            if m["status"] == "ready" and m.get("path")
        }
        for f in sorted(folder.iterdir()):
            m = _MODEL_FILE.match(f.name)
            if m is None or not f.is_file():
                continue
            if m.group(1) is not None and f.with_suffix("").resolve() in keep:
                continue
            f.unlink(missing_ok=True)
            removed.append(f.name)
        if removed:
            log.warning("removed %d orphan model file(s) from %s", len(removed), folder)
    return {"failed": failed, "removed": removed}
