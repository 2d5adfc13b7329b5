"""``deepcuts serve`` (HTTP API + web page) and ``deepcuts db upgrade`` (schema migrations)."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from deepcuts.cli._common import parse_assignments
from deepcuts.exceptions import DeepcutsError

log = logging.getLogger(__name__)

DATA_DIR_HELP = (
    "folder of the SQLite database and the trained models "
    "(default: $DEEPCUTS_DATA_DIR or ~/.local/share/deepcuts)"
)
DB_HELP = (
    "database URL, e.g. postgresql+psycopg://user:password@host/dbname "
    "(default: $DEEPCUTS_DATABASE_URL or a SQLite file in the data dir)"
)


def default_data_dir() -> Path:
    env = os.environ.get("DEEPCUTS_DATA_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "deepcuts"


def _missing_serve_extra(e: ImportError) -> DeepcutsError:
    return DeepcutsError(
        f"the service needs the 'serve' extra ({e.name} is missing): pip install 'deepcuts[serve]'"
    )


def _store(args):
    try:
        from deepcuts.serving.store import Store, default_url
    except ImportError as e:
        raise _missing_serve_extra(e) from None
    data_dir = Path(args.data_dir) if args.data_dir else default_data_dir()
    url = args.db or os.environ.get("DEEPCUTS_DATABASE_URL") or default_url(data_dir)
    return Store(url, upgrade=False), data_dir


def register(sub) -> None:
    p = sub.add_parser(
        "serve",
        help="run the HTTP API and web page",
        description="Serve recommendations over HTTP (OpenAPI docs at /docs, web page at /). "
        "With no set-up it stores everything in a SQLite file in the data dir, fills it with "
        "the bundled Last.fm 2K plays and trains an ALS model on first start. "
        "Example: deepcuts serve --port 8000",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    p.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=argparse.SUPPRESS,
        help="log every request (access log) and the service's steps; also 'deepcuts -v serve'",
    )
    p.add_argument("--data-dir", help=DATA_DIR_HELP)
    p.add_argument("--db", help=DB_HELP)
    p.add_argument(
        "--model",
        default=None,
        help="model trained when none is stored: a registry name (pinned; its settings from "
        "--param, else its defaults) or 'auto': pick the family and settings on a validation "
        "split of the stored plays within --param budget_s=60 (default: auto when Optuna is "
        "installed and no --param is given, else ALS)",
    )
    p.add_argument(
        "--param",
        action="extend",
        nargs="+",
        default=[],
        metavar="NAME=VALUE",
        help="hyperparameter of that model, repeatable (e.g. --param factors=64)",
    )
    p.add_argument(
        "--model-file",
        metavar="PATH",
        help="serve this saved model (PATH.npz + PATH.json, e.g. from 'deepcuts train' or "
        "'deepcuts spark-train'): it is copied into the registry and made the active model",
    )
    p.add_argument(
        "--no-seed",
        action="store_true",
        help="do not fill an empty database with the bundled Last.fm 2K plays",
    )
    p.add_argument(
        "--max-upload-mb",
        type=_upload_mb,
        default=64,
        help="history upload limit, compressed or not (default: 64)",
    )
    p.add_argument(
        "--token",
        default=None,
        help="bearer token needed by writes and admin endpoints (default: $DEEPCUTS_API_TOKEN;"
        " required when --host is not a loopback address)",
    )
    p.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="host name clients may use in the Host header, repeatable (default: localhost, "
        "127.0.0.1, ::1 and --host; every name when --host is 0.0.0.0)",
    )
    p.add_argument(
        "--workers",
        type=_workers,
        default=1,
        help="server processes sharing the port (default: 1); each loads the model, and "
        "listens, retrains and model swaps reach all of them. About one per CPU core",
    )
    p.set_defaults(func=run_serve)

    db = sub.add_parser(
        "db",
        help="database maintenance (schema migrations)",
        description="Bring the database schema up to date (Alembic migrations shipped with "
        "deepcuts). 'deepcuts serve' does this on start too. Example: deepcuts db upgrade",
    )
    db.add_argument("action", choices=("upgrade", "current"), help="upgrade, or show the revision")
    db.add_argument("--data-dir", help=DATA_DIR_HELP)
    db.add_argument("--db", help=DB_HELP)
    db.set_defaults(func=run_db)


def run_db(args) -> int:
    store, _ = _store(args)
    try:
        if args.action == "upgrade":
            print(f"{store!r}: schema at revision {store.upgrade()}")
        else:
            try:
                rev = store.revision()
            except Exception as e:  # noqa: BLE001 - unreachable server, not a database file
                from sqlalchemy.exc import SQLAlchemyError

                if not isinstance(e, SQLAlchemyError):
                    raise
                reason = str(getattr(e, "orig", None) or e).strip().splitlines()[0]
                raise DeepcutsError(
                    f"cannot read the database {store!r}: {reason}; check --db (is the server "
                    "running, is the file a deepcuts SQLite database?)"
                ) from None
            print(f"{store!r}: schema at revision {rev or 'none (run upgrade)'}")
    finally:
        store.close()
    return 0


def _security(args):
    """The token and allowed hosts of ``deepcuts serve`` (deepcuts.serving._security)."""
    from deepcuts.serving._security import TOKEN_ENV, Security, is_loopback

    token = args.token or os.environ.get(TOKEN_ENV) or None
    if token is not None and len(token) < 16:
        raise DeepcutsError("--token must have at least 16 characters (use a random string)")
    if token is None and not is_loopback(args.host):
        raise DeepcutsError(
            f"--host {args.host} listens beyond this machine: set a token for writes and admin "
            f"endpoints with --token TOKEN or ${TOKEN_ENV} (e.g. a random 32-character string)"
        )
    return Security.for_listener(args.host, token=token, allowed_hosts=args.allowed_host)


#: set for ``deepcuts serve`` unless the environment already says otherwise (see passive_openmp)
SERVE_ENV = {"OMP_WAIT_POLICY": "PASSIVE"}


def passive_openmp(environ=None) -> dict:
    """Let idle OpenMP threads sleep in the serving process; returns the variables it set.

    OpenMP teams (faiss's index search, numba's parallel kernels) spin for a while after each
    parallel region by default. Under 50 concurrent clients on 2 cores that spinning takes the
    cores the other requests need; ``OMP_WAIT_POLICY=PASSIVE`` makes waiting threads sleep.
    The runtime reads the variable when it loads, so this runs before the service imports
    faiss or starts a parallel kernel. A value already in the environment is kept.
    """
    env = os.environ if environ is None else environ
    done = {}
    for k, v in SERVE_ENV.items():
        if k not in env:
            env[k] = done[k] = v
    return done


def run_serve(args) -> int:
    passive_openmp()  # before anything loads an OpenMP runtime (workers inherit it too)
    store, data_dir = _store(args)
    try:
        import uvicorn

        from deepcuts.serving.app import create_app
        from deepcuts.serving.service import RecommenderService
    except ImportError as e:
        raise _missing_serve_extra(e) from None
    params = parse_assignments(args.param, option="--param") or None
    security = _security(args)
    if args.model is None:  # --param without --model: ALS settings, as before 'auto'
        args.model = "als" if params else _default_model()
    if args.workers > 1:
        return _serve_workers(args, store, data_dir, params, security)
    # one BLAS thread per request: concurrency comes from requests, and a multi-threaded BLAS
    # answering many small products at once mostly spins (see docs/serving.md)
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="blas")
    store.upgrade()
    service = RecommenderService(
        store,
        data_dir,
        model=args.model,
        model_params=params,
        seed=not args.no_seed,
        freeze_gc=True,
    )
    print(f"deepcuts serve: {store!r}, models in {data_dir / 'models'}")
    _import_model_file(service, args)
    print(
        "loading the model (the first start seeds the database and trains it) and compiling "
        "the request kernels (first run after an install: about 10-30 s)..."
    )
    service.start()
    h = service.handle
    print(f'kernels warm ({service.warm_s:.1f} s); ready: GET /health says "ready": true')
    print(f"serving model {h.model_id} ({h.kind}) at http://{args.host}:{args.port}/")
    app = create_app(service, max_upload=int(args.max_upload_mb * 2**20), security=security)
    uvicorn.run(app, host=args.host, port=args.port, **_log_options(args))
    return 0


def _default_model() -> str:
    """``auto`` (pick on the served data) when Optuna is installed, else ALS."""
    try:
        import optuna  # noqa: F401
    except ImportError:
        print("Optuna is not installed: training ALS (pip install 'deepcuts[tune]' lets the "
              "service pick its model on the served data)")  # fmt: skip
        return "als"
    return "auto"


def _log_options(args) -> dict:
    """uvicorn's logging: an access log (one line per request) with ``deepcuts -v serve``."""
    verbose = getattr(args, "verbose", 0) > 0
    return {"log_level": "info" if verbose else "warning", "access_log": verbose}


def _workers(value: str) -> int:
    import argparse

    try:
        n = int(value)
    except ValueError:
        n = 0
    if not 1 <= n <= 256:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to 256, got {value!r}")
    return n


def _upload_mb(value: str) -> float:
    import argparse
    import math

    try:
        mb = float(value)
    except ValueError:
        mb = -1.0
    if not (math.isfinite(mb) and 0 < mb <= 4096):
        raise argparse.ArgumentTypeError(f"must be a number of MiB in (0, 4096], got {value!r}")
    return mb


def _serve_workers(args, store, data_dir: Path, params, security) -> int:
    """``--workers N``: prepare the database and model here, then run N uvicorn worker
    processes (``deepcuts.serving.app:worker_app``) that share the port and an event log."""
    import json

    import uvicorn

    from deepcuts.serving._shared import EventLog
    from deepcuts.serving.app import WORKER_CONFIG_ENV
    from deepcuts.serving.service import RecommenderService

    store.upgrade()
    service = RecommenderService(
        store, data_dir, model=args.model, model_params=params, seed=not args.no_seed
    )
    print(f"deepcuts serve: {store!r}, models in {data_dir / 'models'}")
    _import_model_file(service, args)
    print("checking the model (the first start seeds the database and trains it)...")
    service.start(load=False)
    events = data_dir / "serve-events.jsonl"
    EventLog.reset(events).close()
    os.environ[WORKER_CONFIG_ENV] = json.dumps(
        {
            "url": store.url.render_as_string(hide_password=False),
            "data_dir": str(data_dir),
            "model": args.model,
            "params": service.model_params,
            "events": str(events),
            "max_upload": int(args.max_upload_mb * 2**20),
            "token": security.token,
            "allowed_hosts": security.allowed_hosts,
        }
    )
    store.close()
    del service
    # one thread per worker for every numeric library, set before the workers import them
    # (a multi-threaded OpenBLAS keeps a spinning thread per process even when limited later)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    print(f"serving at http://{args.host}:{args.port}/ with {args.workers} worker processes")
    uvicorn.run(
        "deepcuts.serving.app:worker_app",
        factory=True,
        workers=args.workers,
        host=args.host,
        port=args.port,
        **_log_options(args),
    )
    return 0


def _import_model_file(service, args) -> None:
    if args.model_file:
        model_id = service.import_model(args.model_file)
        print(f"imported {args.model_file} as model {model_id}")
