"""deepcuts as a service: storage, the recommendation service, the HTTP API and a web page.

Needs the ``serve`` extra (``pip install 'deepcuts[serve]'``). Names are imported on first
use, so ``deepcuts.serving.store`` does not load the web framework. See ``docs/serving.md``.
"""

from __future__ import annotations

import importlib

__all__ = ["Listen", "RecommenderService", "Store", "create_app"]

_WHERE = {
    "Listen": "deepcuts.serving.store",
    "Store": "deepcuts.serving.store",
    "RecommenderService": "deepcuts.serving.service",
    "create_app": "deepcuts.serving.app",
}


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'deepcuts.serving' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
