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
"""

from __future__ import annotations

import gc
import inspect
import json
import logging
import os
import threading
import time
import weakref
from collections import Counter, OrderedDict
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from deepcuts.data.artists import artist_key, normalize_artists, primary_artist
from deepcuts.data.datasets import load_lastfm2k
from deepcuts.exceptions import DataError, DeepcutsError, UnknownIdError
from deepcuts.models import ALS, MODELS, Recommender, load_model, make_model
from deepcuts.models.base import rank_candidates
from deepcuts.models.persona import shown as _persona_shown
from deepcuts.rerank import build_rerankers, item_evidence, popularity_percentiles
from deepcuts.serving._foldin import ALSFoldIn
from deepcuts.serving._shared import EventLog
from deepcuts.serving._validate import check_id
from deepcuts.serving._warmup import warm_up
from deepcuts.serving.store import Listen, Store

__all__ = [
    "AUTO",
    "DEFAULT_MODEL",
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
#: model name that picks the model family and settings on the served data (``deepcuts tune``'s
#: search on a validation split of the stored plays, within ``budget_s`` seconds)
AUTO = "auto"
#: stored histories of folded-in users kept in memory (least recently used dropped first)
HISTORY_CACHE = 10_000
#: points of the popularity curve sent to the web page
CURVE_POINTS = 200


class _History:
    """A folded-in user's stored history kept in memory, and what one model derived from it.

    ``stamp`` is the user's dirty stamp when the history was read (a later listen makes the
    entry stale); ``derived`` is ``(weak reference to the ModelHandle, history row, user
    vector or None)``, replaced as one tuple so that concurrent requests never see a row of
    one model with a vector of another, and a weak reference so that the cache does not keep
    a swapped-out model alive.
    """

    __slots__ = ("derived", "plays", "stamp")

    def __init__(self, stamp: float, plays: dict):
        self.stamp = stamp
        self.plays = plays
        self.derived: tuple | None = None

    def row_and_vector(self, h: ModelHandle) -> tuple[sp.csr_matrix, np.ndarray | None]:
        """The history as a (1, n_items) row of ``h``'s model and, for ALS, its folded-in
        user vector (``h.fold.solve``), computed once per served model."""
        d = self.derived
        if d is None or d[0]() is not h:
            row = h.model.history_row(self.plays or {})
            vec = h.fold.solve(row)[0] if h.fold is not None else None
            d = self.derived = (weakref.ref(h), row, vec)
        return d[1], d[2]


class ConflictError(DeepcutsError):
    """The request conflicts with the stored state (HTTP 409)."""


class RetrainBusyError(ConflictError):
    """A retrain is already running."""


class ServiceUnavailable(DeepcutsError):
    """No model to answer with yet (HTTP 503): starting, or loading a newer model."""

    http_status = 503


#: longest a worker waits for the newest model before answering 503
MODEL_WAIT_S = 60.0


@dataclass(frozen=True, eq=False)
class ModelHandle:
    """A fitted model with what the service derives from it (never mutated once published).

    Attributes
    ----------
    model : Recommender
    model_id : int or None
        Registry id (``None`` for a model not in the registry).
    kind : str
        Registry name of the model class (``"als"``...).
    data_time : float
        Unix time of the data snapshot the model was trained on.
    listeners : ndarray of shape (n_items,)
        Listeners per item in the training data.
    percentile : ndarray of shape (n_items,)
        Popularity percentile of each item: the share (%) of items at most as popular
        (:func:`deepcuts.rerank.popularity_percentiles`, what the ``band`` knob filters on).
    curve, curve_ranks : list
        Listeners of items sorted by popularity, sampled at :data:`CURVE_POINTS` ranks
        (the long tail plotted by the web page).
    rank : ndarray of shape (n_items,)
        Popularity rank of each item (1 = most listeners).
    keys, names, tags : list of length n_items
        Item ids (artist keys), display names and tag lists, as plain Python objects.
    user_pos, item_pos : dict
        External id -> internal index (plain dicts: the request path avoids pandas).
    fold : ALSFoldIn or None
        Fast single-history fold-in (ALS models).
    """

    model: Recommender
    model_id: int | None
    kind: str
    data_time: float
    listeners: np.ndarray
    percentile: np.ndarray
    curve: list
    curve_ranks: list
    rank: np.ndarray
    keys: list
    names: list
    tags: list
    user_pos: dict
    item_pos: dict
    fold: ALSFoldIn | None = None
    loaded_at: float = field(default_factory=time.time)

    @classmethod
    def build(cls, model: Recommender, model_id, kind: str, data_time: float) -> ModelHandle:
        x = model.interactions_
        pop = np.asarray(x.item_popularity(), dtype=np.float64)
        order = np.argsort(-pop, kind="stable")
        rank = np.empty(len(pop), np.int64)
        rank[order] = np.arange(1, len(pop) + 1)
        ranks = np.unique(np.geomspace(1, len(pop), CURVE_POINTS).astype(np.int64)) - 1
        tags = x.items["tags"].tolist() if x.items is not None and "tags" in x.items else None
        return cls(
            model=model,
            model_id=model_id,
            kind=kind,
            data_time=data_time,
            listeners=pop,
            percentile=popularity_percentiles(pop),
            curve=pop[order][ranks].tolist(),
            curve_ranks=(ranks + 1).tolist(),
            rank=rank,
            keys=[str(k) for k in x.item_map.ids.tolist()],
            names=[str(v) for v in x.item_names().tolist()],
            tags=[list(t) if isinstance(t, list | tuple) else [] for t in tags]
            if tags is not None
            else [[] for _ in range(len(pop))],
            user_pos={str(u): i for i, u in enumerate(x.user_map.ids.tolist())},
            item_pos={str(k): i for i, k in enumerate(x.item_map.ids.tolist())},
            fold=ALSFoldIn(model) if isinstance(model, ALS) else None,
        )

    def info(self) -> dict:
        x = self.model.interactions_
        return {
            "id": self.model_id,
            "kind": self.kind,
            "class": type(self.model).__name__,
            "params": json.loads(json.dumps(self.model.get_params(), default=str)),
            "n_users": x.n_users,
            "n_items": x.n_items,
            "nnz": x.nnz,
            "personas": self.n_personas_max,
            "loaded_at": self.loaded_at,
        }

    @property
    def n_personas_max(self) -> int:
        U = getattr(self.model, "persona_factors_", None)
        if U is not None:
            return int(U.shape[1])
        return int(getattr(self.model, "n_personas", 1) or 1)


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


class RecommenderService:
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
        self.model_params = _check_model(self.kind, model_params)  # validate now
        self.seed = seed
        self.freeze_gc = bool(freeze_gc)
        self.events = events
        self._job_pid: int | None = None  # process running the latest job (from the log)
        self._running: dict | None = None  # the job dict a retrain thread of this process runs
        self._child = None  # its training process (Popen), while one runs
        # newest model id activated by any worker (the event log); never answer with older
        self._newest = -1
        self._own: set[int] = set()  # model ids this process publishes itself
        self._published = threading.Condition()
        self._reload_after = 0.0
        self._reload_lock = threading.Lock()
        self._poller: threading.Thread | None = None
        self._handle: ModelHandle | None = None
        self._dirty: dict[str, float] = {}
        self._dirty_lock = threading.Lock()
        # user -> stored history of a folded-in user (and its fold-in for the served model)
        self._histories: OrderedDict[str, _History] = OrderedDict()
        self._job_lock = threading.RLock()
        self._job: dict | None = None
        self._thread: threading.Thread | None = None
        self._schema: str | None = None

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

    def _log_job(self, job: dict) -> None:
        if self.events is not None:
            self.events.append({"kind": "job", "job": job, "pid": os.getpid()})

    # ------------------------------------------------------------------ retraining
    def retrain(self, kind: str | None = None, params: dict | None = None) -> dict:
        """Start training a new model in a background thread; returns the job.

        The service answers from the current model until the new one is ready, then swaps.
        Raises :class:`RetrainBusyError` while another retrain runs.
        """
        kind = (kind or self.kind).lower()
        if params is None:
            params = self.model_params if kind == self.kind else {}
        params = _check_model(kind, params)  # bad name or parameter: fail before starting
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

    # ------------------------------------------------------------------ listens
    def add_listens(self, listens: list[Listen], *, replace_user: str | None = None) -> int:
        n = self.store.add_listens(listens, replace_user=replace_user)
        now = time.time()
        users = {x.user.strip() for x in listens}
        with self._dirty_lock:
            for u in users:
                self._dirty[u] = now
                self._histories.pop(u, None)
        if self.events is not None:  # before answering: the client's next request may go
            self.events.append({"kind": "listens", "t": now, "users": sorted(users)})
        return n

    def import_history(
        self, user: str, path, format: str, *, mode: str = "new", display_name: str = "upload"
    ) -> dict:
        """Store a listening export as the listens of ``user``; they are folded into the
        served model at once.

        ``format`` is one of :data:`deepcuts.data.readers.HISTORY_FORMATS`: ``"lastfm1k"``
        (Last.fm 1K TSV), ``"lastfm-scrobbles"`` (Last.fm scrobble CSV export),
        ``"listenbrainz"`` (JSON lines, .zip or JSON array) or ``"spotify"`` (streaming
        history JSON or .zip). Every listen of the file is stored under ``user``, whatever
        user the file names. ``mode``: ``"new"`` (the user must not exist yet), ``"merge"``
        (add the listens to the user's) or ``"replace"`` (the user's stored plays are replaced,
        in the same transaction). Errors name the file as ``display_name``, never the server
        path it was saved under.
        """
        from deepcuts.data.readers import HISTORY_FORMATS, read_interactions

        user = _check_user(user)
        if mode not in ("new", "merge", "replace"):
            raise DataError(f"mode must be 'new', 'merge' or 'replace', got {mode!r}", field="mode")
        if mode == "new" and self.store.has_user(user):
            raise ConflictError(
                f"user {user!r} already exists; upload with mode=merge to add these listens "
                "or mode=replace to replace the user's history"
            )
        if format not in HISTORY_FORMATS:
            raise DataError(
                f"unknown format {format!r}; use one of {', '.join(HISTORY_FORMATS)}",
                field="format",
            )
        kw = {} if format == "lastfm1k" else {"user": user}
        try:
            x, log_ = read_interactions(path, format=format, return_log=True, **kw)
        except DataError as e:  # the message names the upload, not the server's temp path
            raise DataError(_hide_path(str(e), path, display_name)) from None
        except (OSError, ValueError, EOFError) as e:
            raise DataError(
                f"{display_name}: cannot read this file as {format} "
                f"({_hide_path(type(e).__name__ + ': ' + str(e), path, display_name)})"
            ) from None
        names = dict(zip(x.items["item"], x.items["name"].astype(str)))
        listens = [
            Listen(user, names[k], None, int(t), None)
            for k, t in zip(log_["item"].tolist(), log_["timestamp"].tolist())
        ]
        if mode == "replace":
            n = self.add_listens(listens, replace_user=user)
        else:
            n = self.add_listens(listens)
        h = self.handle
        known = h.model.interactions_.item_map.index(x.item_map.ids, missing="ignore") >= 0
        out = {
            "user": user,
            "listens": n,
            "artists": int(len(known)),
            "known_artists": int(known.sum()),
        }
        if mode != "new":
            out["mode"] = mode
        return out

    # ------------------------------------------------------------------ queries
    def _user_source(self, h: ModelHandle, user: str) -> tuple[str, dict | None]:
        """("model", None) for the fast path, ("history", {artist: plays}) to fold in."""
        source, entry = self._user_entry(h, user)
        return source, None if entry is None else entry.plays

    def _memory_source(
        self, h: ModelHandle, user: str
    ) -> tuple[str | None, _History | None, float]:
        """Where ``user`` is answered from without the database: ("model", None), ("history",
        the cached :class:`_History`), or (None, None) when its history must be read; and the
        user's dirty stamp."""
        with self._dirty_lock:
            stamp = self._dirty.get(user, -1.0)
            cached = self._histories.get(user)
        if user in h.user_pos and stamp < h.data_time:
            return "model", None, stamp
        if cached is not None and cached.stamp == stamp:
            return "history", cached, stamp
        return None, None, stamp

    def _user_entry(self, h: ModelHandle, user: str) -> tuple[str, _History | None]:
        """("model", None) for the fast path, ("history", the user's :class:`_History`)."""
        source, cached, stamp = self._memory_source(h, user)
        if source is not None:
            return source, cached
        hist = self.store.history(user)
        if hist is None:
            if user in h.user_pos:  # trained on, then removed from the database: keep serving it
                return "model", None
            raise UnknownIdError(
                f"unknown user {user!r}; post listens for it or import a history first"
            )
        entry = _History(stamp, hist)
        with self._dirty_lock:
            if self._dirty.get(user, -1.0) == stamp:  # no listen arrived meanwhile
                self._histories[user] = entry
                self._histories.move_to_end(user)
                while len(self._histories) > HISTORY_CACHE:
                    self._histories.popitem(last=False)
        return "history", entry

    def needs_store(self, user: str) -> bool:
        """True when recommending for ``user`` will read the database."""
        self.sync()
        h = self._handle
        return h is None or self._memory_source(h, user)[0] is None

    def _persona_kw(self, h: ModelHandle, persona: int | None) -> dict:
        if persona is None:
            return {}
        k = h.n_personas_max
        if not hasattr(h.model, "personas"):
            if persona != 0:
                raise DataError(
                    f"persona {persona} does not exist: {type(h.model).__name__} models give "
                    "every user a single persona (0)",
                    field="persona",
                )
            return {}
        if not 0 <= persona < k:
            raise DataError(f"persona must be in [0, {k - 1}], got {persona}", field="persona")
        return {"persona": int(persona)}

    def recommend(
        self,
        user: str,
        *,
        n: int = 10,
        exclude_played: bool = True,
        rarity: float | None = None,
        band: str | tuple[float, float] | None = None,
        diversity: float | None = None,
        persona: int | None = None,
        depth: float | str | None = None,
        floor: int | None = None,
        taste: float | None = None,
    ) -> dict:
        """Top-``n`` artists for ``user`` with the knobs applied (see the HTTP API docs)."""
        h = self.handle
        user = _check_user(user)
        source, entry = self._user_entry(h, user)
        knobs = dict(
            rarity=rarity, band=band, diversity=diversity, depth=depth, floor=floor, taste=taste
        )
        if source == "history" and h.fold is not None:  # ALS: the cached folded-in vector
            return self._recommend_folded(
                h, [user], [entry], n=n, exclude_played=exclude_played, persona=persona, **knobs
            )[0]
        rerankers = _rerankers(**knobs)
        m = h.model
        if source == "model":
            u = h.user_pos[user]
            uidx, row = np.array([u], np.int32), m.interactions_.matrix[u : u + 1]
        else:
            uidx, row = np.array([-1], np.int32), entry.row_and_vector(h)[0]
        idx, val, per = m.rank_index(
            uidx,
            row,
            int(n),
            filter_played=exclude_played,
            rerankers=rerankers,
            **self._persona_kw(h, persona),
        )
        keep = idx[0] >= 0
        return {
            "user": user,
            "model": h.model_id,
            "source": source,
            "items": self._items(
                h, idx[0][keep], val[0][keep], None if per is None else per[0][keep]
            ),
        }

    def recommend_batch(self, requests) -> list:
        """Answer many recommendation requests at once.

        Parameters
        ----------
        requests : sequence of (user, dict)
            The user and the keyword arguments of :meth:`recommend` for each request.

        Returns
        -------
        list
            One entry per request, in order: the dict :meth:`recommend` returns, or the
            exception it would raise (returned, not raised, so one bad request does not fail
            the others).

        Requests for users served from their row of the model (the fast path) that share the
        same knobs are ranked together: one matrix product scores the whole group, so the item
        factors are read from memory once per group instead of once per request (for ALS on
        Last.fm 2K the single-user product is memory bound: ~170 us for one user, ~25 us per
        user in a group of 16). So are the requests of an ALS model for users folded in from
        their stored history, from the user vectors kept with the histories
        (:meth:`_recommend_folded`). The results are the ones :meth:`recommend` gives.
        Requests for folded-in users of other models go through :meth:`recommend` one by one.
        """
        h = self.handle
        out: list = [None] * len(requests)
        groups: dict[tuple, list[tuple[int, str]]] = {}
        folded: dict[tuple, list[tuple[int, str, _History]]] = {}
        for k, (user, kw) in enumerate(requests):
            try:
                kw = {**RECOMMEND_DEFAULTS, **kw}
                if set(kw) != set(RECOMMEND_DEFAULTS):
                    bad = sorted(set(kw) - set(RECOMMEND_DEFAULTS))
                    raise DeepcutsError(f"unknown recommendation argument(s) {bad}")
                user = _check_user(user)
                source, entry = self._user_entry(h, user)
                if source == "history" and h.fold is None:
                    out[k] = self.recommend(user, **kw)
                    continue
                if isinstance(kw["band"], list):
                    kw["band"] = tuple(kw["band"])
                key = tuple(sorted(kw.items()))
                if source == "model":
                    groups.setdefault(key, []).append((k, user))
                else:
                    folded.setdefault(key, []).append((k, user, entry))
            except Exception as e:  # noqa: BLE001 - handed back per request
                out[k] = e
        for key, members in folded.items():
            try:
                users = [u for _, u, _ in members]
                res = self._recommend_folded(h, users, [e for _, _, e in members], **dict(key))
            except Exception as e:  # noqa: BLE001
                res = [e] * len(members)
            for (k, _, _), r in zip(members, res):
                out[k] = r
        m = h.model
        for key, members in groups.items():
            kw = dict(key)
            try:
                rerankers = _rerankers(
                    rarity=kw["rarity"],
                    band=kw["band"],
                    diversity=kw["diversity"],
                    depth=kw["depth"],
                    floor=kw["floor"],
                    taste=kw["taste"],
                )
                uidx = np.array([h.user_pos[u] for _, u in members], np.int32)
                idx, val, per = m.rank_index(
                    uidx,
                    m.interactions_.matrix[uidx],
                    int(kw["n"]),
                    filter_played=kw["exclude_played"],
                    rerankers=rerankers,
                    **self._persona_kw(h, kw["persona"]),
                )
            except Exception as e:  # noqa: BLE001
                for k, _ in members:
                    out[k] = e
                continue
            keep = idx >= 0
            for r, (k, user) in enumerate(members):
                out[k] = {
                    "user": user,
                    "model": h.model_id,
                    "source": "model",
                    "items": self._items(
                        h,
                        idx[r][keep[r]],
                        val[r][keep[r]],
                        None if per is None else per[r][keep[r]],
                    ),
                }
        return out

    def _recommend_folded(
        self,
        h: ModelHandle,
        users: list[str],
        entries: list[_History],
        *,
        n: int,
        exclude_played: bool,
        rarity=None,
        band=None,
        diversity=None,
        persona=None,
        depth=None,
        floor=None,
        taste=None,
    ) -> list[dict]:
        """:meth:`recommend` for users of an ALS model folded in from their stored histories,
        all with the same knobs: their cached user vectors are scored with one matrix product
        and ranked together (:func:`_rank_folded`)."""
        self._persona_kw(h, persona)  # validates the knob (ALS: persona 0 only)
        rerankers = _rerankers(
            rarity=rarity, band=band, diversity=diversity, depth=depth, floor=floor, taste=taste
        )
        rows, vectors = zip(*(e.row_and_vector(h) for e in entries))
        idx, val = _rank_folded(h, np.stack(vectors), rows, int(n), exclude_played, rerankers)
        keep = idx >= 0
        return [
            {
                "user": user,
                "model": h.model_id,
                "source": "history",
                "items": self._items(h, idx[r][keep[r]], val[r][keep[r]]),
            }
            for r, user in enumerate(users)
        ]

    def _items(self, h: ModelHandle, idx, scores=None, personas=None) -> list[dict]:
        out = []
        for j, i in enumerate(np.asarray(idx, np.int64).tolist()):
            d = {
                "rank": j + 1,
                "artist": h.keys[i],
                "name": h.names[i],
                "listeners": int(h.listeners[i]),
                "popularity_rank": int(h.rank[i]),
                "percentile": round(float(h.percentile[i]), 2),
                "tags": h.tags[i],
            }
            if scores is not None:
                d["score"] = float(scores[j])
            if personas is not None:
                d["persona"] = int(personas[j])
            out.append(d)
        return out

    def personas(self, user: str, *, n: int = 10) -> dict:
        """The user's personas: share of the plays, label, tags and top artists of each.

        Persona models (:class:`~deepcuts.models.PersonaALS`) give one entry per persona of
        the user: each played artist is credited to the persona that scores it highest
        (``argmax_p x_up . y_i``), and users of the training data get the model's own labels
        and idf-weighted tags (``PersonaALS.personas``). Users folded in from their stored
        history get persona vectors from ``fold_in`` and tags weighted by plays. Every other
        model describes a user by exactly one persona (0): the user as a whole, with the most
        played artists; ``persona=0`` is then the only valid value of the recommendation knob.
        """
        h = self.handle
        user = _check_user(user)
        source, hist = self._user_source(h, user)
        m = h.model
        x = m.interactions_
        if source == "model":
            u = h.user_pos[user]
            row = x.matrix[u]
        else:
            u = -1
            row = m.history_row(hist or {})
        idx = row.indices.astype(np.int64)
        plays = row.data.astype(np.float64)
        described: dict[int, dict] = {}
        assignments = getattr(type(m), "_assignments", None)
        if hasattr(m, "persona_factors_") and assignments is not None:
            # persona models with the shared description (labels that set personas apart)
            assign, k = assignments(m, u, sp.csr_matrix(row, dtype=np.float32))
            df = (
                m.personas(user, n_artists=n, n_tags=5)
                if u >= 0
                else m.personas(history=row, n_artists=n, n_tags=5)
            )
            described = {int(r.persona): r._asdict() for r in df.itertuples(index=False)}
        elif hasattr(m, "persona_factors_"):
            if u >= 0:
                U, k = m.persona_factors_[u], int(m.user_n_personas_[u])
                df = m.personas(user, n_artists=n, n_tags=5)
                described = {int(r.persona): r._asdict() for r in df.itertuples(index=False)}
            else:
                U3, k3 = m.fold_in(row)
                U, k = U3[0], int(k3[0])
            if len(idx):
                assign = np.argmax(U[:k] @ m.item_factors_[idx].T, axis=0)
            else:
                assign = np.zeros(0, np.int64)
        else:
            k, assign = 1, np.zeros(len(idx), np.int64)
        total = max(float(plays.sum()), 1e-12)
        out = []
        for p in range(k):
            sel = assign == p
            order = np.argsort(-plays[sel], kind="stable")
            items = self._items(h, idx[sel][order][:n])
            for it, pl in zip(items, plays[sel][order][:n]):
                it["plays"] = float(pl)
            d = described.get(p)
            tags = list(d["top_tags"]) if d else _tag_labels(items, plays[sel][order][:n])
            label = (d or {}).get("label") or (
                " / ".join(tags[:2]) if tags else (items[0]["name"] if items else "")
            )
            share = float(d["share"]) if d else float(plays[sel].sum() / total)
            out.append(
                {
                    "persona": p,
                    "share": share,
                    "label": label,
                    "tags": tags,
                    "n_artists": int(sel.sum()),
                    "top_artists": items,
                }
            )
        if len(out) > 1:  # tabs: no persona under 5% of the plays or with fewer than 3 artists
            kept = [d for d in out if _persona_shown(d["share"], d["n_artists"])]
            out = kept or out[:1]
        return {"user": user, "model": h.model_id, "source": source, "personas": out}

    def similar(self, artist: str, *, n: int = 10) -> dict:
        """The ``n`` artists most similar to ``artist`` (an artist key or a name)."""
        h = self.handle
        key = self._artist_key(h, artist)
        recs = h.model.similar_items([key], n=n)
        target = self._items(h, [h.item_pos[key]])[0]
        return {
            "artist": key,
            "name": target["name"],
            "model": h.model_id,
            "items": self._items(h, recs.item_index, recs.scores),
        }

    def _artist_key(self, h: ModelHandle, artist: str) -> str:
        if artist in h.item_pos:
            return artist
        key = artist_key(primary_artist(artist))
        if key in h.item_pos:
            return key
        raise UnknownIdError(
            f"unknown artist {artist!r}; use an artist key or name from the recommendations"
        )

    def explain(self, user: str, artist: str, *, n: int = 5) -> dict:
        """Which of the user's artists made ``artist`` score high ("why this"), and the evidence.

        ALS models give the exact decomposition of the score over the played artists
        (``method="als"``, Hu et al. 2008), for trained users and for users folded in from
        their stored history alike. Other models: each played artist contributes its
        similarity to ``artist`` times ``log(1 + plays)`` (``method="similarity"``).
        ``evidence`` ("why this deep cut", :func:`deepcuts.rerank.item_evidence`): the artist's
        training listeners, its popularity percentile, whether it clears the depth knob's
        floor, how many of its listeners also play the user's artists, and which of them.
        """
        h = self.handle
        user = _check_user(user)
        key = self._artist_key(h, artist)
        source, hist = self._user_source(h, user)
        x = h.model.interactions_
        i = h.item_pos[key]
        if source == "model" and hasattr(h.model, "explain"):
            df = h.model.explain(user, key, n=n)
            method = "als"
            rows = [
                (str(r.item), float(r.count), float(r.contribution))
                for r in df.itertuples(index=False)
            ]
        elif h.fold is not None:  # ALS, history folded in: the same exact decomposition
            row = h.model.history_row(hist or {})
            idx, contrib = h.fold.contributions(row, i)
            plays = row.data.astype(np.float64)
            order = np.argsort(-contrib, kind="stable")[:n]
            method = "als"
            rows = [(h.keys[idx[k]], float(plays[k]), float(contrib[k])) for k in order]
        else:
            if source == "model":
                row = x.matrix[h.user_pos[user]]
                idx, plays = row.indices.astype(np.int64), row.data.astype(np.float64)
            else:
                ix = x.item_map.index(np.array(list(hist), dtype=object), missing="ignore")
                keep = ix >= 0
                idx, plays = ix[keep].astype(np.int64), np.array(list(hist.values()))[keep]
            try:
                sim = np.asarray(h.model._similar_items(np.array([i])), np.float64)[0]
            except DeepcutsError:
                sim = np.zeros(x.n_items)
            contrib = sim[idx] * np.log1p(plays)
            order = np.argsort(-contrib, kind="stable")[:n]
            method = "similarity"
            rows = [(h.keys[idx[k]], float(plays[k]), float(contrib[k])) for k in order]
        keys = [r[0] for r in rows]
        ix = [h.item_pos[k] for k in keys if k in h.item_pos]
        items = self._items(h, ix) if len(keys) else []
        for it, r in zip(items, rows):
            it["plays"] = r[1]
            it["contribution"] = r[2]
        target = self._items(h, [i])[0]
        if source == "model":
            history = x.matrix[h.user_pos[user]]
        else:
            history = h.model.history_row(hist or {})
        ev = item_evidence(x, i, history, n=n)
        evidence = {
            "listeners": ev["listeners"],
            "percentile": ev["percentile"],
            "eligible": ev["eligible"],
            "co_listeners": ev["co_listeners"],
            "similarity": ev["similarity"],
            "shared": [
                {"artist": h.keys[j], "name": h.names[j], "co_listeners": c}
                for j, c in ev["shared"]
            ],
        }
        return {
            "user": user,
            "artist": key,
            "name": target["name"],
            "method": method,
            "model": h.model_id,
            "because": items,
            "evidence": evidence,
        }

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


def _hide_path(message: str, path, name: str) -> str:
    """``message`` with the server-side ``path`` (and its folder) replaced by ``name``."""
    p = Path(str(path))
    for s in (str(p), str(p.parent)):
        message = message.replace(s, name)
    return message


def _rank_folded(h: ModelHandle, vectors, rows, n: int, filter_played: bool, rerankers):
    """Top ``n`` items of folded-in ALS users: ``Recommender.rank_index`` for user vectors.

    Parameters
    ----------
    h : ModelHandle
        An ALS model (``h.fold`` set).
    vectors : ndarray of shape (b, factors), b >= 1
        The users' folded-in vectors (``h.fold.solve``).
    rows : sequence of b csr_matrix of shape (1, n_items)
        Their histories (``history_row``): masked when ``filter_played``, and the
        ``user_items`` of the re-rankers' :class:`~deepcuts.models.RankContext`.

    Returns
    -------
    idx : ndarray of shape (b, n) int64, -1 padded
    val : ndarray of shape (b, n) float32
    """
    lengths = np.fromiter((r.nnz for r in rows), np.int64, len(rows))
    indptr = np.zeros(len(rows) + 1, np.int64)
    np.cumsum(lengths, out=indptr[1:])
    n_items = h.model.n_items
    user_items = sp.csr_matrix(
        (np.concatenate([r.data for r in rows]), np.concatenate([r.indices for r in rows]), indptr),
        shape=(len(rows), n_items),
    )
    # big catalogues: the model's item index proposes candidates (ALS ann=, issue 15), and the
    # masks and re-rankers work on that (b, C) block end to end, never on a dense row
    found = h.model.vector_candidates(vectors, n + lengths * filter_played)
    cand, scores = found if found is not None else (None, h.fold.scores(vectors))
    return rank_candidates(
        h.model, np.full(len(rows), -1, np.int32), user_items, n, cand, scores,
        filter_played=filter_played, rerankers=rerankers,
    )  # fmt: skip


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


#: the keyword arguments of RecommenderService.recommend and their defaults
RECOMMEND_DEFAULTS = {
    name: p.default
    for name, p in inspect.signature(RecommenderService.recommend).parameters.items()
    if p.kind is inspect.Parameter.KEYWORD_ONLY
}


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


def _check_user(user) -> str:
    return check_id(str(user))  # the one rule for ids (deepcuts.serving._validate)


def _tag_labels(items: list[dict], weights, k: int = 5) -> list[str]:
    c: Counter = Counter()
    for it, w in zip(items, weights):
        for rank, t in enumerate(it["tags"]):
            c[str(t)] += float(w) / (1 + rank)
    return [t for t, _ in c.most_common(k)]


def _rerankers(
    *, rarity=None, band=None, diversity=None, depth=None, floor=None, taste=None
) -> list:
    """Re-rankers for the knobs that were given (:func:`deepcuts.rerank.build_rerankers`)."""
    knobs = dict(rarity=rarity, band=band, diversity=diversity, depth=depth, floor=floor)
    if all(v is None for v in knobs.values()) and taste is None:
        return []
    return build_rerankers(**knobs, taste=taste)


def _check_model(kind: str, params: dict) -> dict:
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
