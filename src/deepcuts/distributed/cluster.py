"""A Spark standalone cluster (one master, N workers) started on this machine.

For trying the cluster recipe of docs/distributed.md without a cluster, and for the tests and
``benchmarks/spark_cluster.py``: the master and each worker are separate JVMs started with
Spark's own ``spark-class org.apache.spark.deploy.master.Master`` / ``...worker.Worker`` from
pyspark's bundled distribution, exactly the daemons ``sbin/start-master.sh`` and
``sbin/start-worker.sh`` start on real machines. Each daemon runs in its own process group;
:meth:`StandaloneCluster.stop` (also on errors, and at interpreter exit) ends the whole group,
so no JVM outlives the cluster object.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from deepcuts.distributed._session import _INSTALL_HINT, _log4j_file, find_java, require_spark
from deepcuts.exceptions import DeepcutsError

__all__ = ["StandaloneCluster", "standalone_cluster"]

log = logging.getLogger(__name__)


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _tail(path: Path, n: int = 15) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-n:])


class StandaloneCluster:
    """A running Spark standalone master and its workers (see :func:`standalone_cluster`).

    Attributes
    ----------
    master_url : str
        ``spark://HOST:PORT``: give it to ``deepcuts spark-train --master``,
        :func:`~deepcuts.distributed.cluster_session` or ``spark-submit --master``.
    web_url : str
        The master's web UI (``/json/`` lists the workers).
    work_dir : pathlib.Path
        Logs (``master.log``, ``worker-K.log``) and the workers' scratch folders.
    """

    def __init__(
        self,
        *,
        workers: int = 2,
        cores: int = 1,
        memory: str = "1g",
        host: str = "127.0.0.1",
        work_dir=None,
        pythonpath: str | None = None,
        timeout: float = 60.0,
    ):
        require_spark()
        if find_java() is None:
            raise DeepcutsError(f"Spark needs a Java runtime and none was found; {_INSTALL_HINT}")
        for name, v in (("workers", workers), ("cores", cores)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise DeepcutsError(f"{name} must be an integer >= 1, got {v!r}")
        self.workers, self.cores, self.memory, self.host = workers, cores, memory, host
        self.timeout = float(timeout)
        self._tmp = None
        if work_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="deepcuts-spark-cluster-")
            work_dir = self._tmp.name
        self.work_dir = Path(work_dir)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        if pythonpath is None:  # the workers import the driver's deepcuts
            pythonpath = str(Path(__file__).resolve().parents[2])
        self.pythonpath = pythonpath
        self._procs: list[tuple[str, subprocess.Popen, Path]] = []
        self.master_url = ""
        self.web_url = ""

    # ------------------------------------------------------------------ processes
    def _env(self) -> dict:
        import pyspark

        home = os.environ.get("SPARK_HOME") or str(Path(pyspark.__file__).parent)
        env = dict(os.environ)
        paths = [self.pythonpath, *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
        env.update(
            SPARK_HOME=home,
            SPARK_LOCAL_IP=self.host,
            SPARK_DAEMON_MEMORY="256m",
            SPARK_DAEMON_JAVA_OPTS=f"-Dlog4j.configurationFile=file:{_log4j_file()}",
            SPARK_LOCAL_DIRS=str(self.work_dir / "scratch"),
            PYSPARK_PYTHON=env.get("PYSPARK_PYTHON", sys.executable),
            PYTHONPATH=os.pathsep.join(dict.fromkeys(paths)),
        )
        return env

    def _spawn(self, name: str, args: list[str]) -> None:
        env = self._env()
        spark_class = str(Path(env["SPARK_HOME"]) / "bin" / "spark-class")
        logfile = self.work_dir / f"{name}.log"
        with open(logfile, "wb") as fh:
            proc = subprocess.Popen(
                [spark_class, *args],
                stdout=fh,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,  # its own process group: stop() ends the JVM with it
            )
        self._procs.append((name, proc, logfile))

    def _status(self) -> dict | None:
        try:
            with urllib.request.urlopen(self.web_url + "/json/", timeout=2) as r:
                return json.loads(r.read().decode())
        except (OSError, ValueError):
            return None

    def _wait(self, what: str, ready) -> None:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            for name, proc, logfile in self._procs:
                if proc.poll() is not None:
                    raise DeepcutsError(
                        f"the Spark {name} exited (code {proc.returncode}) while waiting for "
                        f"{what}; its log {logfile} ends with:\n{_tail(logfile)}"
                    )
            if ready():
                return
            time.sleep(0.25)
        logs = "\n".join(f"--- {lf}\n{_tail(lf)}" for _, _, lf in self._procs)
        raise DeepcutsError(f"timed out after {self.timeout:g}s waiting for {what}\n{logs}")

    def start(self) -> StandaloneCluster:
        """Start the master, then the workers; return when every worker is registered."""
        if self._procs:
            raise DeepcutsError("this cluster is already started")
        atexit.register(self.stop)
        try:
            port, ui = _free_port(self.host), _free_port(self.host)
            self.master_url = f"spark://{self.host}:{port}"
            self.web_url = f"http://{self.host}:{ui}"
            self._spawn(
                "master",
                ["org.apache.spark.deploy.master.Master", "--host", self.host, "--port",
                 str(port), "--webui-port", str(ui)],
            )  # fmt: skip
            self._wait("the master", lambda: self._status() is not None)
            for k in range(self.workers):
                wdir = self.work_dir / f"worker-{k}"
                wdir.mkdir(exist_ok=True)
                self._spawn(
                    f"worker-{k}",
                    ["org.apache.spark.deploy.worker.Worker", self.master_url, "--host",
                     self.host, "--cores", str(self.cores), "--memory", self.memory,
                     "--webui-port", str(_free_port(self.host)), "--work-dir", str(wdir)],
                )  # fmt: skip

            def all_alive():
                st = self._status() or {}
                alive = [w for w in st.get("workers", []) if w.get("state") == "ALIVE"]
                return len(alive) >= self.workers

            self._wait(f"{self.workers} workers to register", all_alive)
        except BaseException:
            self.stop()
            raise
        log.info("Spark standalone cluster at %s with %d workers", self.master_url, self.workers)
        return self

    def alive_workers(self) -> list[dict]:
        """The master's view of its ALIVE workers (id, cores, memory, coresused, ...)."""
        st = self._status() or {}
        return [w for w in st.get("workers", []) if w.get("state") == "ALIVE"]

    def applications(self) -> list[dict]:
        """Applications the master runs or ran (``activeapps`` then ``completedapps``)."""
        st = self._status() or {}
        return list(st.get("activeapps", [])) + list(st.get("completedapps", []))

    def stop(self) -> None:
        """End every daemon's process group (SIGTERM, then SIGKILL after 10 s). Idempotent."""
        procs, self._procs = self._procs, []
        for _, proc, _ in reversed(procs):  # workers first, then the master
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for _, proc, _ in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=10)
        atexit.unregister(self.stop)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> StandaloneCluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def standalone_cluster(
    workers: int = 2,
    cores: int = 1,
    memory: str = "1g",
    *,
    host: str = "127.0.0.1",
    work_dir=None,
    pythonpath: str | None = None,
    timeout: float = 60.0,
) -> StandaloneCluster:
    """A Spark standalone cluster on this machine; use it as a context manager.

    Parameters
    ----------
    workers : int, default=2
        Worker daemons (each hosts one executor per application).
    cores, memory : int, str, default=1, "1g"
        What each worker offers (``--cores``, ``--memory``); an application's
        ``spark.executor.memory`` must fit in ``memory``.
    host : str, default="127.0.0.1"
    work_dir : path, optional
        Logs and scratch space (default: a temporary folder removed by ``stop``).
    pythonpath : str, optional
        ``PYTHONPATH`` of the workers' Python processes; default the folder this deepcuts is
        imported from, so the executors run the driver's deepcuts.
    timeout : float, default=60
        Seconds to wait for the master and for every worker to register.

    Returns
    -------
    StandaloneCluster
        Not started yet: ``with standalone_cluster() as c:`` starts it and stops it (the
        daemons' process groups are ended on exit, on errors too).

    Examples
    --------
    >>> with standalone_cluster(workers=2, cores=1, memory="1g") as c:  # doctest: +SKIP
    ...     spark = cluster_session(c.master_url, executor_memory="1g")
    ...     model = SparkALS(spark=spark).fit(load_lastfm2k())
    ...     spark.stop()
    """
    return StandaloneCluster(
        workers=workers, cores=cores, memory=memory, host=host, work_dir=work_dir,
        pythonpath=pythonpath, timeout=timeout,
    )  # fmt: skip
