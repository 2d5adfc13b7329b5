"""Spark sessions: a user's own (cluster) session or a small local one, and the pyspark import.

pyspark is an optional dependency (``pip install 'deepcuts[spark]'``) that also needs a Java
runtime; nothing in :mod:`deepcuts` imports it before a distributed function is called.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

from deepcuts.exceptions import DataError, DeepcutsError

__all__ = [
    "active_session",
    "cluster_session",
    "local_session",
    "require_spark",
    "session_for_master",
]

log = logging.getLogger(__name__)

_INSTALL_HINT = (
    "install it with: pip install 'deepcuts[spark]' (it also needs a Java 17+ runtime: "
    "e.g. apt-get install openjdk-17-jre-headless, or set JAVA_HOME)"
)

# Spark's log4j2 configuration for local sessions: warnings and errors only, no INFO chatter
_LOG4J2 = """\
rootLogger.level = error
rootLogger.appenderRef.stdout.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{HH:mm:ss} %p %c{1}: %m%n
# a task failing on bad input is reported to the driver (as a DataError): no stack traces here
logger.executor.name = org.apache.spark.executor.Executor
logger.executor.level = off
logger.tasks.name = org.apache.spark.scheduler.TaskSetManager
logger.tasks.level = off
"""


def find_java() -> str | None:
    """Path of the ``java`` executable Spark would start (``JAVA_HOME`` first), or None."""
    home = os.environ.get("JAVA_HOME")
    if home:
        cand = Path(home) / "bin" / "java"
        if cand.exists():
            return str(cand)
    return shutil.which("java")


def require_spark():
    """Import and return :mod:`pyspark`, or raise :class:`DeepcutsError` saying how to get it.

    Also silences pyspark's "does not yet fully support pandas >= 3" ``FutureWarning``: deepcuts
    exchanges only plain numeric and string columns with Spark, which work (and are tested).
    """
    try:
        import pyspark
    except ImportError:
        raise DeepcutsError(
            f"deepcuts.distributed needs pyspark, which is missing; {_INSTALL_HINT}"
        ) from None
    warnings.filterwarnings(
        "ignore", message=r"PySpark does not yet fully support pandas", category=FutureWarning
    )
    # pyspark's own pandas conversions still pass copy=False, deprecated in pandas 3
    warnings.filterwarnings("ignore", message=r"The copy keyword is deprecated", module=r"pyspark")
    return pyspark


def _log4j_file() -> str:
    path = Path(tempfile.gettempdir()) / "deepcuts-spark-log4j2.properties"
    if not path.exists() or path.read_text() != _LOG4J2:
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(_LOG4J2)
        os.replace(tmp, path)
    return str(path)


def local_session(
    cores: int | str = 2,
    memory: str = "1g",
    *,
    app_name: str = "deepcuts",
    shuffle_partitions: int | None = None,
    conf: dict | None = None,
):
    """Start (or reuse) a local Spark session with quiet logging.

    Parameters
    ----------
    cores : int or "*", default=2
        Worker threads (``local[cores]``).
    memory : str, default="1g"
        Driver memory (in local mode the driver also runs the executors), e.g. ``"4g"``.
    app_name : str, default="deepcuts"
    shuffle_partitions : int, optional
        ``spark.sql.shuffle.partitions``; default ``2 * cores`` (Spark's 200 is meant for
        clusters and makes small local jobs slow).
    conf : dict, optional
        Further Spark settings, e.g. ``{"spark.local.dir": "/scratch"}``.

    Returns
    -------
    pyspark.sql.SparkSession
        For a cluster build your own session (``SparkSession.builder.master("spark://...")``,
        YARN, Kubernetes) and pass it as ``spark=`` to the distributed functions instead.

    Examples
    --------
    >>> spark = local_session(cores=2, memory="1g")  # doctest: +SKIP
    >>> spark.sparkContext.master  # doctest: +SKIP
    'local[2]'
    """
    require_spark()
    if find_java() is None:
        raise DeepcutsError(f"Spark needs a Java runtime and none was found; {_INSTALL_HINT}")
    from pyspark.sql import SparkSession

    if not (
        cores == "*" or (isinstance(cores, int) and not isinstance(cores, bool) and cores >= 1)
    ):
        raise DeepcutsError(f"cores must be an integer >= 1 or '*', got {cores!r}")
    if not isinstance(memory, str) or not re.fullmatch(r"\d+[kmgt]?", memory.lower()):
        raise DeepcutsError(f"memory must look like '512m' or '2g', got {memory!r}")
    n = (os.cpu_count() or 2) if cores == "*" else int(cores)
    # the driver's own Python runs the workers (same packages, same deepcuts)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    # the workers must import this deepcuts even when it is not installed (PYTHONPATH=src)
    src = str(Path(__file__).resolve().parents[2])
    paths = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    if src not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([src, *filter(None, paths)])
    java_opts = f"-Dlog4j.configurationFile=file:{_log4j_file()} -Dlog4j2.level=error"
    settings = {
        "spark.driver.memory": memory,
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.shuffle.partitions": str(shuffle_partitions or 2 * n),
        "spark.default.parallelism": str(2 * n),
        "spark.driver.extraJavaOptions": java_opts,
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.session.timeZone": "UTC",
        **(conf or {}),
    }
    builder = SparkSession.builder.master(f"local[{cores}]").appName(app_name)
    for k, v in settings.items():
        builder = builder.config(k, v)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    log.info("local Spark session %s (%s memory)", spark.sparkContext.master, memory)
    return spark


def active_session(spark=None):
    """``spark`` if given, else the active Spark session, else a new :func:`local_session`."""
    require_spark()
    if spark is not None:
        return spark
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    log.info("no active Spark session: starting a local one (pass spark= to use a cluster)")
    return local_session()


def _under_spark_submit() -> bool:
    """True in a Python driver that ``spark-submit`` started (it passes its JVM's gateway)."""
    return bool(os.environ.get("PYSPARK_GATEWAY_PORT"))


def cluster_session(
    master: str | None,
    *,
    executor_memory: str | None = None,
    executor_cores: int | None = None,
    driver_memory: str | None = None,
    app_name: str = "deepcuts",
    conf: dict | None = None,
):
    """A Spark session on a cluster: ``spark://HOST:PORT`` (standalone), ``yarn`` or
    ``k8s://https://HOST:PORT``, with the settings deepcuts relies on.

    The driver runs in this Python process (client mode); the executors run on the cluster's
    workers and import deepcuts there, so every worker needs the same deepcuts (installed, or
    on the workers' ``PYTHONPATH``) and a Python of the same minor version (the driver's
    ``PYSPARK_PYTHON``, else ``python3``; set ``spark.pyspark.python`` in ``conf`` when the
    workers keep it elsewhere). See docs/distributed.md, "Running on a cluster".

    Parameters
    ----------
    master : str or None
        The master URL; None in a script run by ``spark-submit``: the master it was given.
    executor_memory : str, optional
        ``spark.executor.memory`` (e.g. ``"1g"``; it must fit in what a worker offers).
    executor_cores : int, optional
        ``spark.executor.cores``.
    driver_memory : str, optional
        ``spark.driver.memory`` of this process's JVM (applies only when it starts here).
    app_name : str, default="deepcuts"
    conf : dict, optional
        Further Spark settings; they win over deepcuts' (e.g. ``spark.driver.host`` when the
        workers must reach the driver on another address).

    Returns
    -------
    pyspark.sql.SparkSession

    Examples
    --------
    >>> spark = cluster_session("spark://head:7077", executor_memory="4g")  # doctest: +SKIP
    >>> model = SparkALS(spark=spark).fit(read_table("hdfs:///plays/", columns=...))  # doctest: +SKIP
    """
    require_spark()
    if find_java() is None:
        raise DeepcutsError(f"Spark needs a Java runtime and none was found; {_INSTALL_HINT}")
    from pyspark.sql import SparkSession

    if master is None and not _under_spark_submit():
        raise DeepcutsError(
            "cluster_session(None) takes the master from spark-submit, but this process was not "
            "started by spark-submit; pass the master URL, e.g. 'spark://HOST:7077'"
        )
    master = None if master is None else str(master).strip()
    if master is not None and not re.match(r"^(spark|k8s|mesos)://\S+$|^yarn$", master):
        raise DeepcutsError(
            f"master {master!r} is not a Spark cluster URL; use spark://HOST:PORT, yarn or "
            "k8s://https://HOST:PORT (or local_session() for one machine)"
        )
    for name, v in (("executor_memory", executor_memory), ("driver_memory", driver_memory)):
        if v is not None and (not isinstance(v, str) or not re.fullmatch(r"\d+[kmgt]?", v.lower())):
            raise DeepcutsError(f"{name} must look like '512m' or '2g', got {v!r}")
    if executor_cores is not None and (
        not isinstance(executor_cores, int)
        or isinstance(executor_cores, bool)
        or executor_cores < 1
    ):
        raise DeepcutsError(f"executor_cores must be an integer >= 1, got {executor_cores!r}")
    java_opts = f"-Dlog4j.configurationFile=file:{_log4j_file()} -Dlog4j2.level=error"
    settings = {
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.extraJavaOptions": java_opts,
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.session.timeZone": "UTC",
    }
    if executor_memory is not None:
        settings["spark.executor.memory"] = executor_memory
    if executor_cores is not None:
        settings["spark.executor.cores"] = str(executor_cores)
    if driver_memory is not None:
        settings["spark.driver.memory"] = driver_memory
    settings.update(conf or {})
    builder = SparkSession.builder.appName(app_name)
    if master is not None:
        builder = builder.master(master)
    for k, v in settings.items():
        builder = builder.config(k, v)
    spark = builder.getOrCreate()
    got = spark.sparkContext.master
    if master is not None and got != master:
        raise DeepcutsError(
            f"a Spark session on {got!r} is already running in this process; stop it "
            f"(spark.stop()) before connecting to {master!r}"
        )
    spark.sparkContext.setLogLevel("ERROR")
    log.info("Spark session on %s (application %s)", got, spark.sparkContext.applicationId)
    return spark


def session_for_master(master: str | None, *, memory: str = "1g", app_name: str = "deepcuts"):
    """A Spark session for a master URL: ``local[N]`` / ``local[*]`` via :func:`local_session`,
    anything else (``spark://host:7077``, ``yarn``, ``k8s://https://...``) via
    :func:`cluster_session` (``spark-submit`` settings and ``spark-defaults.conf`` apply).
    ``None``: the master ``spark-submit`` was given when it started this process, else
    ``local[2]``.

    Returns ``(session, created)``: ``created`` is False when a session was already running
    (it is then returned as is, and its owner stops it; it must be on ``master``).
    """
    require_spark()
    from pyspark.sql import SparkSession

    if master is None and _under_spark_submit():
        active = SparkSession.getActiveSession()
        if active is not None:
            return active, False
        return cluster_session(None, app_name=app_name), True
    master = "local[2]" if master is None else str(master).strip()
    active = SparkSession.getActiveSession()
    if active is not None:
        got = active.sparkContext.master
        if got != master and not (master.startswith("local") and got.startswith("local")):
            raise DeepcutsError(
                f"a Spark session on {got!r} is already running in this process; stop it "
                f"before asking for {master!r}"
            )
        return active, False
    m = re.fullmatch(r"local(?:\[(\d+|\*)\])?", master)
    if m is not None:
        cores = m.group(1) or "1"
        return local_session(cores if cores == "*" else int(cores), memory, app_name=app_name), True
    return cluster_session(master, driver_memory=memory, app_name=app_name), True


# ---------------------------------------------------------------------- errors from executors
#: executors report bad input as ``_MARK{json}_END`` inside Spark's exception text
_MARK = "<<deepcuts-data-error>>"
_END = "<</deepcuts-data-error>>"
_MARK_RE = re.compile(re.escape(_MARK) + r"(.*?)" + re.escape(_END), re.S)


def bad_input(problem: str, *, path=None, field=None, text=None) -> RuntimeError:
    """An exception to raise inside an executor; :func:`checked` turns it into a DataError."""
    payload = json.dumps({"problem": problem, "path": path, "field": field, "text": text})
    return RuntimeError(_MARK + payload + _END)


def local_path(uri) -> str | None:
    """The local file system path of ``uri`` (``file:`` URIs and plain paths), else None.

    >>> local_path("file:///data/my%20listens.tsv"), local_path("hdfs://nn/logs"), local_path("a.tsv")
    ('/data/my listens.tsv', None, 'a.tsv')
    """
    s = str(uri)
    if s.startswith("file:"):
        s = re.sub(r"^file:(//)?", "", s)
        from urllib.parse import unquote

        return unquote(s)
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", s):
        return None
    return s


def _line_number(path: str | None, text: str | None) -> int | None:
    """1-based number of the first line of local file ``path`` equal to ``text`` (error path)."""
    p = local_path(path) if path else None
    if p is None or text is None or not os.path.isfile(p):
        return None
    import gzip

    opener = gzip.open if p.endswith(".gz") else open
    try:
        with opener(p, "rt", encoding="utf-8", errors="replace", newline=None) as fh:
            for k, line in enumerate(fh, start=1):
                if line.rstrip("\n").lstrip("\ufeff") == text.lstrip("\ufeff"):
                    return k
    except OSError:
        return None
    return None


def as_data_error(exc: BaseException) -> DataError | None:
    """The :class:`DataError` an executor reported inside ``exc`` (a Spark exception), or None."""
    m = _MARK_RE.search(str(exc))
    if m is None:
        return None
    try:
        info = json.loads(m.group(1))
    except json.JSONDecodeError:
        return None
    path = info.get("path")
    shown = local_path(path) if path else None
    line = _line_number(path, info.get("text"))
    problem = info["problem"]
    if line is None and info.get("text") is not None:
        problem += f" (the line reads {info['text'][:200]!r})"
    return DataError(problem, path=shown or path, line=line, field=info.get("field"))


def checked(action):
    """Run ``action()`` (a Spark action), turning bad-input reports into :class:`DataError`."""
    try:
        return action()
    except Exception as e:
        err = as_data_error(e)
        if err is not None:
            raise err from None
        raise
