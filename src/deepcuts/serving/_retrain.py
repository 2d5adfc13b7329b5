"""Child process of a retrain: ``python -m deepcuts.serving._retrain KIND PARAMS_JSON PATH``.

Reads every stored play from the database named by ``$DEEPCUTS_RETRAIN_URL`` (an environment
variable, so a password never shows in the process list), fits the model and saves it to
``PATH``. It lowers its own CPU priority before importing anything heavy, so the serving
process keeps answering. Prints one JSON line: ``{"shape": [n_users, n_items, nnz]}`` or
``{"error": "..."}``.
"""

from __future__ import annotations

import json
import os
import sys


def main(argv: list[str]) -> int:
    try:
        os.nice(10)
    except (AttributeError, OSError):  # pragma: no cover - not POSIX
        pass
    kind, params, path = argv[0], json.loads(argv[1]), argv[2]
    try:
        from deepcuts.serving.service import fit_model
        from deepcuts.serving.store import Store

        store = Store(os.environ["DEEPCUTS_RETRAIN_URL"], upgrade=False)
        try:
            x = store.interactions()
            fit_model(kind, params, x).save(path)
        finally:
            store.close()
        print(json.dumps({"shape": [x.n_users, x.n_items, x.nnz]}))
        return 0
    except Exception as e:  # reported to the parent as text
        print(json.dumps({"error": f"{type(e).__name__}: {e}"}))
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
