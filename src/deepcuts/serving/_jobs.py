"""Retraining in the background: jobs, the training process, cancelling.

A retrain trains in a child process (``python -m deepcuts.serving._retrain``) or a thread; the
service answers from the current model until the new one is ready, then swaps.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from contextlib import nullcontext
from pathlib import Path

from deepcuts.exceptions import DeepcutsError
from deepcuts.models import Recommender, make_model
from deepcuts.serving._errors import ConflictError, RetrainBusyError
from deepcuts.serving.store import Store

__all__ = ["AUTO", "JobsMixin", "check_model", "fit_model"]

log = logging.getLogger(__name__)

#: model name that picks the model family and settings on the served data (``deepcuts tune``'s
#: search on a validation split of the stored plays, within ``budget_s`` seconds)
AUTO = "auto"


class JobsMixin:
    """Retrain jobs of :class:`~deepcuts.serving.service.RecommenderService` (uses its
    ``store``, ``events``, ``kind``, ``model_params``, ``sync`` and ``_train``);
    :meth:`_init_jobs` sets up its own state."""

    def _init_jobs(self) -> None:
        self._job_pid: int | None = None  # process running the latest job (from the log)
        self._running: dict | None = None  # the job dict a retrain thread of this process runs
        self._child = None  # its training process (Popen), while one runs
        self._job_lock = threading.RLock()
        self._job: dict | None = None
        self._thread: threading.Thread | None = None

    def _log_job(self, job: dict) -> None:
        if self.events is not None:
            self.events.append({"kind": "job", "job": job, "pid": os.getpid()})

    def retrain(self, kind: str | None = None, params: dict | None = None) -> dict:
        """Start training a new model in a background thread; returns the job.

        The service answers from the current model until the new one is ready, then swaps.
        Raises :class:`RetrainBusyError` while another retrain runs.
        """
        kind = (kind or self.kind).lower()
        if params is None:
            params = self.model_params if kind == self.kind else {}
        params = check_model(kind, params)  # bad name or parameter: fail before starting
        with self.events.exclusive() if self.events is not None else nullcontext():
            self.sync()  # jobs started by other workers
            return self._start_job(kind, params)

    def _start_job(self, kind: str, params: dict) -> dict:
        with self._job_lock:
            current = self.job()
            if current is not None and current["status"] == "running":
                raise RetrainBusyError(
                    f"retrain job {current['job']} is still running; wait for it "
                    "(GET /retrain) before starting another"
                )
            # job numbers rise across restarts: each job registers a model row
            last = max(self._job["job"] if self._job else 0, self.store.last_model_id())
            job = {
                "job": last + 1,
                "status": "running",
                "kind": kind,
                "params": params,
                "model_id": None,
                "started_at": time.time(),
                "finished_at": None,
                "error": None,
            }
            self._job, self._job_pid, self._running = job, os.getpid(), job
            self._log_job(job)
        self._thread = threading.Thread(
            target=self._run_job, args=(job, kind, params), name="deepcuts-retrain", daemon=True
        )
        self._thread.start()
        return dict(job)

    def _run_job(self, job: dict, kind: str, params: dict) -> None:
        try:
            self._train(kind, params, job)
            job["status"] = "done"
        except Exception as e:  # reported through the job, never raised into the server
            if job.get("cancelled"):
                job["status"], job["error"] = "cancelled", "cancelled by DELETE /retrain"
            else:
                log.exception("retrain job %s failed", job["job"])
                job["status"] = "failed"
                job["error"] = f"{type(e).__name__}: {e}"
        finally:
            job["finished_at"] = time.time()
            job.pop("cancelled", None)
            with self._job_lock:
                if self._running is job:
                    self._running = None
            self._log_job(job)

    def _set_child(self, proc) -> None:
        self._child = proc
        job = self._running
        if proc is not None and job is not None and job.get("cancelled"):
            proc.kill()  # cancelled while the process was starting

    def _cancel_local(self, job_id: int) -> bool:
        """Stop this process's retrain ``job_id`` if it runs here: kill its training process
        (process mode) or drop its result when the fit ends (thread mode)."""
        with self._job_lock:
            job = self._running
            if job is None or job["job"] != job_id:
                return False
            job["cancelled"] = True
            proc = self._child
        if proc is not None and proc.poll() is None:
            proc.kill()
        return True

    def cancel(self) -> dict:
        """Cancel the running retrain (run by any worker); returns the job, now
        ``"cancelled"``. Raises :class:`ConflictError` when none runs.

        The training process is killed at once; a retrain in a thread (in-memory databases)
        cannot be interrupted, so its result is thrown away when the fit ends.
        """
        with self.events.exclusive() if self.events is not None else nullcontext():
            self.sync()
            with self._job_lock:
                current = self.job()
                if current is None or current["status"] != "running":
                    raise ConflictError("no retrain job is running; nothing to cancel")
                if not self._cancel_local(current["job"]) and self.events is not None:
                    self.events.append({"kind": "cancel", "job": current["job"]})
                job = dict(current, status="cancelled", error="cancelled by DELETE /retrain")
                job["finished_at"] = time.time()
                self._job = job
                self._log_job(job)
        return dict(job)

    def job(self) -> dict | None:
        """The latest retrain job (``None`` if none was started), started by any worker."""
        self.sync()
        j = self._job
        if j is None:
            return None
        j = dict(j)
        pid = self._job_pid
        if j["status"] == "running" and pid not in (None, os.getpid()) and not _alive(pid):
            j["status"] = "failed"
            j["error"] = f"the worker process running it ({pid}) exited"
        return j

    def wait(self, timeout: float | None = None) -> dict | None:
        """Block until the running retrain (if any) finishes; returns the job."""
        t = self._thread
        if t is not None:
            t.join(timeout)
        return self.job()


def _fit_in_child(
    store: Store, kind: str, params: dict, path: Path, on_start=None
) -> tuple[int, int, int]:
    """Fit and save a model in ``python -m deepcuts.serving._retrain`` (lower priority, one
    core fewer for numba than the machine has); returns (n_users, n_items, nnz).

    The child dies with this process (``$DEEPCUTS_RETRAIN_PARENT``, see
    :mod:`deepcuts.serving._retrain`); ``on_start(proc)`` is called with the running
    :class:`subprocess.Popen` (and ``None`` when it ended), so that it can be killed."""
    import subprocess
    import sys

    env = dict(os.environ)
    env["DEEPCUTS_RETRAIN_URL"] = store.url.render_as_string(hide_password=False)
    env["DEEPCUTS_RETRAIN_PARENT"] = str(os.getpid())
    env.setdefault("NUMBA_NUM_THREADS", str(max(1, (os.cpu_count() or 2) - 1)))
    cmd = [sys.executable, "-m", "deepcuts.serving._retrain", kind]
    cmd += [json.dumps(params, default=str), str(path)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if on_start is not None:
        on_start(proc)
    try:
        stdout, stderr = proc.communicate()
    finally:
        if on_start is not None:
            on_start(None)
    lines = [ln for ln in stdout.splitlines() if ln.startswith("{")]
    try:
        out = json.loads(lines[-1])
    except (IndexError, ValueError):
        tail = (stderr or stdout).strip().splitlines()[-3:]
        raise DeepcutsError(
            f"the retrain process exited with status {proc.returncode}: {' | '.join(tail)}"
        ) from None
    if "error" in out:
        raise DeepcutsError(out["error"])
    return tuple(out["shape"])


def _remove_model_files(path: Path) -> None:
    """Remove a model's files and the temporary files of an interrupted save."""
    for f in (path.with_suffix(".npz"), path.with_suffix(".json")):
        f.unlink(missing_ok=True)
    for f in path.parent.glob(f".{path.name}.*.tmp"):
        f.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def check_model(kind: str, params: dict) -> dict:
    """Validated parameters of model ``kind`` (``"auto"``: the search settings, filled in)."""
    if kind == AUTO:
        from deepcuts.evaluation.tuning import check_auto_params, require_optuna

        require_optuna()
        return check_auto_params(params)
    make_model(kind, **params)
    return dict(params)


def fit_model(kind: str, params: dict, x, *, show_progress: bool = False) -> Recommender:
    """Fit model ``kind`` on ``x``; ``"auto"`` picks family and settings on a validation split
    of ``x`` first (with a progress bar when ``show_progress``)."""
    if kind == AUTO:
        from deepcuts.evaluation.tuning import fit_auto

        return fit_auto(x, params, show_progress=show_progress)
    return make_model(kind, **params).fit(x)
