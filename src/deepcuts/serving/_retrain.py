"""Child process of a retrain: ``python -m deepcuts.serving._retrain KIND PARAMS_JSON PATH``.

Reads every stored play from the database named by ``$DEEPCUTS_RETRAIN_URL`` (an environment
variable, so a password never shows in the process list), fits the model and saves it to
``PATH``. It lowers its own CPU priority before importing anything heavy, so the serving
process keeps answering. Prints one JSON line: ``{"shape": [n_users, n_items, nnz]}`` or
``{"error": "..."}``.

It dies with the server that started it (``$DEEPCUTS_RETRAIN_PARENT``, that process's id):
on Linux the kernel kills it when its parent exits (``prctl(PR_SET_PDEATHSIG, SIGKILL)``), and
elsewhere a watcher thread exits once the parent is gone; a parent already gone at start ends
it at once. So a killed server leaves no training process behind to write orphan model files.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time

#: prctl option: signal sent to this process when its parent exits (linux/prctl.h)
PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """End this process when process ``parent`` exits (see the module docstring)."""
    if parent <= 0:
        return
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - no libc prctl
            pass
    if os.getppid() != parent:  # the parent died before the prctl: nothing would signal us
        os._exit(3)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(3)

    threading.Thread(target=watch, name="deepcuts-parent-watch", daemon=True).start()


def main(argv: list[str]) -> int:
    die_with_parent(int(os.environ.get("DEEPCUTS_RETRAIN_PARENT", "0") or 0))
    try:
        os.nice(10)
    except (AttributeError, OSError):  # pragma: no cover - not POSIX
        pass
    kind, params, path = argv[0], json.loads(argv[1]), argv[2]
    try:
        from deepcuts.serving._jobs import fit_model
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
