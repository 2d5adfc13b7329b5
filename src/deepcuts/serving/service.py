"""The recommendation service: one store, one served model, background retraining.

The served model lives in an immutable :class:`ModelHandle`; a request reads the reference
once and uses that handle to the end, and a retrain publishes a new handle by a single
reference assignment (atomic in CPython). So a swap never fails or mixes two models inside one
request, and the service keeps answering while a retrain runs.

Which history a user is scored from
-----------------------------------
* users of the training data with no listens posted since: their row of the model (fast path,
  no database access);
* users with listens posted after the served model's data snapshot, and users created after it
  (posted listens, imported histories): their complete stored history, folded into the model
  without retraining (:meth:`Recommender.recommend_history`). The history read from the
  database is kept in memory until the user's next listen (at most :data:`HISTORY_CACHE`
  users), together with what the served model derives from it (the history row and, for
  ALS, the folded-in user vector, recomputed when another model is served). This assumes
  that this process learns of every listen: it receives them all, or reads the other
  workers' through the event log.

Where the parts live
--------------------
This module is the public face: :class:`RecommenderService` with its life cycle (start, load,
train, publish, import a model) and the coordination of worker processes. The rest is in
private modules, mixed into the service:

* :mod:`~deepcuts.serving._handle`: :class:`ModelHandle`, the served model and its lookups;
* :mod:`~deepcuts.serving._history`: listens, imported histories and the history cache;
* :mod:`~deepcuts.serving._recommend`: ``recommend`` and ``recommend_batch`` (batching);
* :mod:`~deepcuts.serving._labels`: ``personas`` (labels, tags, top artists);
* :mod:`~deepcuts.serving._explain`: ``similar`` and ``explain``;
* :mod:`~deepcuts.serving._jobs`: retrain jobs and :func:`fit_model`;
* :mod:`~deepcuts.serving._errors`: :class:`ConflictError`, :class:`RetrainBusyError`,
  :class:`ServiceUnavailable`.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

from deepcuts.data.artists import artist_key, normalize_artists
from deepcuts.data.datasets import load_lastfm2k
from deepcuts.exceptions import DeepcutsError
from deepcuts.models import MODELS, load_model
from deepcuts.serving._errors import ConflictError, RetrainBusyError, ServiceUnavailable
from deepcuts.serving._explain import ExplainMixin
from deepcuts.serving._handle import CURVE_POINTS, ModelHandle
from deepcuts.serving._history import HISTORY_CACHE, HistoryMixin
from deepcuts.serving._jobs import (
    AUTO,
    JobsMixin,
    _fit_in_child,
    _remove_model_files,
    check_model,
    fit_model,
)
from deepcuts.serving._labels import LabelsMixin
from deepcuts.serving._recommend import RECOMMEND_DEFAULTS, RecommendMixin
from deepcuts.serving._recommend import _rank_folded as _rank_folded  # used by tests
from deepcuts.serving._recommend import _rerankers as _rerankers  # used by tests
from deepcuts.serving._shared import EventLog
from deepcuts.serving._warmup import warm_up
from deepcuts.serving.store import Store

__all__ = [
    "AUTO",
    "CURVE_POINTS",
    "DEFAULT_MODEL",
    "HISTORY_CACHE",
    "RECOMMEND_DEFAULTS",
    "ConflictError",
    "ModelHandle",
    "RecommenderService",
    "RetrainBusyError",
    "ServiceUnavailable",
    "fit_model",
]

log = logging.getLogger(__name__)

#: model served when none is configured: ALS on the stored plays, with the activity-scaled
#: penalty (ALS-WR; 11% better NDCG@10 than the unscaled default on Last.fm 2K, docs/als.md)
DEFAULT_MODEL = (
    "als",
    {
        "factors": 64,
        "iterations": 15,
        "regularization": 0.3,
        "reg_scaling": "activity",
        "random_state": 0,
    },
)

#: longest a worker waits for the newest model before answering 503
MODEL_WAIT_S = 60.0


def _bundled_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Last.fm 2K as (user, item=artist key, count) and (item, name, tags) frames."""
    x = load_lastfm2k()
    names = x.items["name"].astype(str).to_numpy()
    norm = normalize_artists(names, credit="primary").drop_duplicates("row")
    key = np.array([artist_key(n) for n in names], dtype=object)
    key[norm["row"].to_numpy()] = norm["key"].to_numpy(dtype=object)
    coo = x.matrix.tocoo()
    plays = pd.DataFrame(
        {
            "user": x.user_map.external(coo.row).astype(str),
            "item": key[coo.col],
            "count": coo.data.astype(np.float64),
        }
    )
    artists = pd.DataFrame({"item": key, "name": names, "tags": x.items["tags"].tolist()})
    artists = artists.drop_duplicates("item")
    return plays, artists


class RecommenderService(HistoryMixin, RecommendMixin, LabelsMixin, ExplainMixin, JobsMixin):
    """Everything the HTTP API does, without HTTP.

    Parameters
    ----------
    store : Store
    data_dir : path
        Where trained models are saved (``<data_dir>/models/model-<id>.{npz,json}``).
    model : str, default="als"
        Registry name of the model trained when none is stored yet, and by default on retrain;
        ``"auto"`` picks the family and its settings on a validation split of the stored plays
        (:func:`deepcuts.evaluation.tuning.fit_auto`; needs Optuna).
    model_params : dict, optional
        Its hyperparameters (default: :data:`DEFAULT_MODEL` for ALS); for ``"auto"`` the
        search's ``budget_s`` (default 60), ``families``, ``metric`` and ``random_state``.
    seed : bool, default=True
        Fill an empty database with the bundled Last.fm 2K play counts on start.
    retrain_in : {"process", "thread"}, default="process"
        Where :meth:`retrain` trains: a child process (the service keeps its CPU time and
        its interpreter lock; the new model comes back through its saved files) or a thread
        of this process. In-memory SQLite databases always use a thread.
    freeze_gc : bool, default=False
        After publishing a model, collect garbage once and move every live object into the
        garbage collector's permanent generation (:func:`gc.freeze`). The ~180k long-lived
        objects of a served model (id and name lookups) otherwise make each full collection
        stop the process for ~50 ms in the middle of requests. Process-wide: ``deepcuts serve``
        turns it on; leave it off when the service shares its process with other work.
    events : EventLog, optional
        The event log shared with the other worker processes of one server
        (``deepcuts serve --workers N``, :mod:`deepcuts.serving._shared`): listens posted,
        models activated and retrain jobs started by any worker reach this one before its
        next answer. ``None`` (default): this process is the only server of the database.

    Examples
    --------
    >>> import tempfile
    >>> from deepcuts.serving.store import Store, Listen
    >>> store = Store("sqlite://")
    >>> _ = store.add_listens([Listen(u, a) for u in "abc" for a in ("x", "y", u)])
    >>> svc = RecommenderService(store, tempfile.mkdtemp(), model="popularity", seed=False)
    >>> svc.start()
    >>> [r["artist"] for r in svc.recommend("a", n=1)["items"]]
    ['b']
    """

    def __init__(
        self,
        store: Store,
        data_dir,
        *,
        model: str = "als",
        model_params: dict | None = None,
        seed: bool = True,
        retrain_in: str = "process",
        freeze_gc: bool = False,
        events: EventLog | None = None,
    ):
        if retrain_in not in ("process", "thread"):
            raise DeepcutsError(f"retrain_in must be 'process' or 'thread', got {retrain_in!r}")
        if store.dialect == "sqlite" and store.url.database in (None, "", ":memory:"):
            retrain_in = "thread"  # another process cannot see an in-memory database
        self.retrain_in = retrain_in
        self.store = store
        self.data_dir = Path(data_dir)
        self.kind = str(model).lower()
        if self.kind not in MODELS and self.kind != AUTO:
            raise DeepcutsError(
                f"unknown model {model!r}; choose one of {sorted(MODELS)} or {AUTO!r}"
            )
        if model_params is None:
            model_params = dict(DEFAULT_MODEL[1]) if self.kind == DEFAULT_MODEL[0] else {}
        self.model_params = check_model(self.kind, model_params)  # validate now
        self.seed = seed
        self.freeze_gc = bool(freeze_gc)
        self.events = events
        # newest model id activated by any worker (the event log); never answer with older
        self._newest = -1
        self._own: set[int] = set()  # model ids this process publishes itself
        self._published = threading.Condition()
        self._reload_after = 0.0
        self._reload_lock = threading.Lock()
        self._poller: threading.Thread | None = None
        self._handle: ModelHandle | None = None
        self._schema: str | None = None
        self._init_histories()
        self._init_jobs()

    # ------------------------------------------------------------------ life cycle
    def start(self, *, load: bool = True) -> None:
        """Load the active model from the registry, or seed/train one (blocking).

        ``load=False`` only makes sure that a loadable active model exists (seeding and
        training as needed) and does not keep it: what the parent process of
        ``deepcuts serve --workers N`` does before its workers load it.
        """
        self._schema = self.store.revision()
        if self.events is None:  # the one process of this server, or the parent of workers
            from deepcuts.serving._recovery import recover

            recover(self.store, self.data_dir)
        if self.events is not None and self._poller is None and load:
            self._poller = threading.Thread(
                target=self._poll_events, name="deepcuts-events", daemon=True
            )
            self._poller.start()
        if self.seed and self.store.is_empty():
            plays, artists = _bundled_frames()
            n = self.store.import_play_counts(plays, artists)
            log.info("seeded the database with %d Last.fm 2K play counts", n)
        row = self.store.active_model()
        if row is not None and row["path"] and Path(row["path"] + ".npz").exists():
            try:
                model = load_model(row["path"])
                if not load:
                    return
                self._publish(
                    ModelHandle.build(model, row["id"], row["kind"], float(row["created_at"]))
                )
                log.info("loaded model %s from %s", row["id"], row["path"])
                return
            except DeepcutsError as e:  # damaged files: train a new one
                log.warning("cannot load model %s (%s); training a new one", row["id"], e)
        self._train(self.kind, self.model_params)
        if not load:
            self._handle = None

    @property
    def handle(self) -> ModelHandle:
        h = self._handle
        if self.events is not None:
            self.sync()
            h = self._handle
            if h is not None and self._newest > (h.model_id or -1):
                h = self._wait_newest()
        if h is None:
            raise ServiceUnavailable("no model is loaded yet; the service is starting")
        return h

    def _wait_newest(self) -> ModelHandle:
        """Another worker activated a newer model: wait for its load here, so that a client
        that saw the newer model never gets an answer from an older one (503 after
        :data:`MODEL_WAIT_S`)."""
        deadline = time.monotonic() + MODEL_WAIT_S
        with self._published:
            while True:
                h = self._handle
                if (h.model_id or -1) >= self._newest:
                    return h
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ServiceUnavailable(
                        f"this worker is still loading model {self._newest}; retry shortly"
                    )
                self._published.wait(min(left, 0.5))
                self.sync()

    def _publish(self, handle: ModelHandle) -> None:
        # compile/warm the request kernels before the swap: no request waits on numba
        self.warm_s = warm_up(handle)
        with self._published:
            self._handle = handle  # the atomic swap
            self._published.notify_all()
        with self._dirty_lock:
            self._dirty = {u: t for u, t in self._dirty.items() if t >= handle.data_time}
        if self.freeze_gc:
            # the previous model's objects go back to the collector (one full collection per
            # swap, not one every few thousand requests), the new model's stay out of it
            gc.unfreeze()
            gc.collect()
            gc.freeze()

    def _train(self, kind: str, params: dict, job: dict | None = None) -> ModelHandle:
        model_id = self.store.register_model(kind, params)
        if job is not None:
            job["model_id"] = model_id
        path = self.data_dir / "models" / f"model-{model_id}"
        path.parent.mkdir(parents=True, exist_ok=True)
        data_time = time.time()
        try:
            if job is not None and self.retrain_in == "process":
                # a child process: the compiled training kernels hold the GIL while they run,
                # which would stall every request of this process for seconds
                shape = _fit_in_child(self.store, kind, params, path, self._set_child)
                if job.get("cancelled"):
                    raise DeepcutsError("cancelled")
                model = load_model(path)
            else:
                x = self.store.interactions()
                model = fit_model(kind, params, x, show_progress=job is None)
                model.save(path)
                shape = (x.n_users, x.n_items, x.nnz)
            self.store.finish_model(
                model_id, path=str(path), n_users=shape[0], n_items=shape[1], nnz=shape[2]
            )
        except Exception as e:
            self.store.fail_model(model_id, f"{type(e).__name__}: {e}")
            _remove_model_files(path)
            raise
        handle = ModelHandle.build(model, model_id, kind, data_time)
        if job is not None and job.get("cancelled"):  # thread mode: cannot stop the fit
            self.store.fail_model(model_id, "cancelled")
            _remove_model_files(path)
            raise DeepcutsError("cancelled")
        self._activate(handle)
        log.info("serving model %d (%s, %s users x %s items)", model_id, kind, *shape[:2])
        return handle

    def import_model(self, path) -> int:
        """Register a model trained elsewhere and serve it; returns its registry id.

        ``path`` names a saved deepcuts model (``<path>.npz`` + ``<path>.json``: ``deepcuts
        train``, ``Recommender.save``, or ``deepcuts spark-train`` on a cluster). The files are
        validated by loading them, copied into the data directory's ``models/`` and the model
        becomes the active one (for every worker of a running server). Its users are answered
        from their model rows; users with listens posted after the import, and users the
        model does not know, are folded in from their stored history as usual.
        """
        src = Path(str(path))
        if src.suffix in (".npz", ".json"):
            src = src.with_suffix("")
        model = load_model(src)  # a missing or damaged file: a DeepcutsError naming it
        kind = next((k for k, cls in MODELS.items() if type(model) is cls), None)
        if kind is None:
            raise DeepcutsError(
                f"{src}: a {type(model).__name__} cannot be served; use one of {sorted(MODELS)}"
            )
        params = json.loads(json.dumps(model.get_params(), default=str))
        model_id = self.store.register_model(kind, params)
        dest = self.data_dir / "models" / f"model-{model_id}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            model.save(dest)
        except Exception as e:
            self.store.fail_model(model_id, f"{type(e).__name__}: {e}")
            raise
        x = model.interactions_
        self.store.finish_model(
            model_id, path=str(dest), n_users=x.n_users, n_items=x.n_items, nnz=x.nnz
        )
        if self._handle is not None:  # a running service swaps now; start() loads it
            self._activate(ModelHandle.build(model, model_id, kind, time.time()))
        else:
            self.store.activate_model(model_id)
            if self.events is not None:
                self.events.append({"kind": "model", "id": model_id})
        log.info("imported %s as model %d (%s)", src, model_id, kind)
        return model_id

    def _activate(self, handle: ModelHandle) -> None:
        """Make ``handle`` the active model: registry, then event log, then this process.

        In this order a client can only get an answer from the new model after the other
        workers can learn of it (they sync before answering and then wait for it)."""
        self._own.add(handle.model_id)
        self.store.activate_model(handle.model_id)
        if self.events is not None:
            self.events.append({"kind": "model", "id": handle.model_id})
        self._newest = max(self._newest, handle.model_id)
        self._publish(handle)

    # ------------------------------------------------------------------ other workers
    def sync(self) -> None:
        """Apply what the other worker processes logged since the last call (no-op without
        an event log): mark users with new listens, take over retrain job states, and load
        the registry's active model if another worker activated a new one."""
        if self.events is None:
            return
        reload = False
        for ev in self.events.read_new():
            kind = ev.get("kind")
            if kind == "listens":
                t = float(ev["t"])
                with self._dirty_lock:
                    for u in ev["users"]:
                        if self._dirty.get(u, -1.0) < t:
                            self._dirty[u] = t
                        self._histories.pop(u, None)
            elif kind == "job":
                job = ev["job"]
                with self._job_lock:
                    if self._job is None or job["job"] >= self._job["job"]:
                        self._job, self._job_pid = dict(job), ev.get("pid")
            elif kind == "model":
                h = self._handle
                mid = int(ev.get("id") or -1)
                self._newest = max(self._newest, mid)
                reload = reload or (mid not in self._own and (h is None or mid != h.model_id))
            elif kind == "cancel":
                self._cancel_local(int(ev["job"]))
        h = self._handle
        if h is not None and self._newest > (h.model_id or -1) and self._newest not in self._own:
            reload = reload or time.monotonic() >= self._reload_after  # retry a failed load
        if reload and self._reload_lock.acquire(blocking=False):
            # load in the background: this worker answers from its current model meanwhile
            threading.Thread(target=self._reload_active, daemon=True).start()

    def _reload_active(self) -> None:
        try:
            row = self.store.active_model()
            h = self._handle
            if row is None or (h is not None and row["id"] == h.model_id) or not row["path"]:
                return
            model = load_model(row["path"])
            self._publish(
                ModelHandle.build(model, row["id"], row["kind"], float(row["created_at"]))
            )
            log.info("worker %d now serves model %s", os.getpid(), row["id"])
        except Exception:  # a damaged model file: keep serving the current one
            log.exception("could not load the newly activated model")
            self._reload_after = time.monotonic() + 5.0
        finally:
            self._reload_lock.release()

    def _poll_events(self) -> None:
        """Timer thread: keep up with the log while no request arrives."""
        while True:
            time.sleep(1.0)
            try:
                self.sync()
            except Exception:  # never let the poller die silently on a transient error
                log.exception("reading the worker event log failed")

    def curve(self) -> dict:
        """The popularity curve: listeners of the artist at each sampled popularity rank."""
        h = self.handle
        return {
            "model": h.model_id,
            "ranks": h.curve_ranks,
            "listeners": h.curve,
            "n_items": int(len(h.listeners)),
        }

    def users(self, *, limit: int = 50, offset: int = 0) -> list[str]:
        return self.store.users(limit=limit, offset=offset)

    def health(self) -> dict:
        h = self._handle
        return {
            "status": "ok" if h is not None else "starting",
            # readiness: a model is loaded and its compiled kernels are warm (issue 14)
            "ready": h is not None,
            "warm_s": getattr(self, "warm_s", None),
            "model": None if h is None else h.info(),
            "retrain": self.job(),
            "database": self.store.dialect,
            "schema": self._schema,
        }
