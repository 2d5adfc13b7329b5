"""deepcuts.distributed on a real Spark standalone cluster (issue 15, item 5).

The module starts a master and two workers (1 core, 1 GB each) on this machine with Spark's own
daemons (:func:`deepcuts.distributed.standalone_cluster`) and stops them when it ends, also when
a test fails (a finalizer ends each daemon's process group). Then:

- in-process driver (``cluster_session("spark://...")``): SparkALS trains on both workers'
  executors; its NDCG@10 on Last.fm 2K is within 5% of the local ALS with the same settings
  (ALS-WR penalty, exact solves);

Skipped when pyspark or Java is missing.
"""

import subprocess
import sys

import pytest

pytest.importorskip("pyspark", reason="pyspark is not installed (pip install 'deepcuts[spark]')")

from deepcuts.distributed import find_java  # noqa: E402

if find_java() is None:
    pytest.skip("Spark needs a Java runtime (java on PATH or JAVA_HOME)", allow_module_level=True)

from deepcuts.data import load_lastfm2k  # noqa: E402
from deepcuts.distributed import (  # noqa: E402
    SparkALS,
    cluster_session,
    standalone_cluster,
)
from deepcuts.evaluation import evaluate, user_holdout_split  # noqa: E402
from deepcuts.exceptions import DeepcutsError  # noqa: E402
from deepcuts.models import ALS  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.spark]


def _group_members(pgids) -> list[int]:
    """Live processes (zombies aside: exited, only not yet reaped) of the process groups."""
    out = subprocess.run(["ps", "-eo", "pid=,pgid=,stat="], capture_output=True, text=True).stdout
    rows = [line.split() for line in out.splitlines() if line.strip()]
    return [int(p) for p, g, st in rows if int(g) in pgids and not st.startswith("Z")]


@pytest.fixture(scope="module")
def cluster(request, tmp_path_factory):
    c = standalone_cluster(
        workers=2, cores=1, memory="1g", work_dir=tmp_path_factory.mktemp("cluster")
    )
    pgids: set[int] = set()

    def stop():
        c.stop()
        # no daemon outlives the cluster: every process group it started is empty
        assert _group_members(pgids) == [], "Spark daemons left running"

    request.addfinalizer(stop)  # before start: a half-started cluster is stopped too
    c.start()
    pgids.update(proc.pid for _, proc, _ in c._procs)
    assert len(_group_members(pgids)) >= 3  # master, two workers (JVMs)
    return c


@pytest.fixture(scope="module")
def split2k():
    return user_holdout_split(load_lastfm2k(), test_fraction=0.2, random_state=0)


def test_sparkals_on_cluster_matches_local_als(cluster, split2k):
    train, test = split2k
    assert len(cluster.alive_workers()) == 2
    spark = cluster_session(
        cluster.master_url,
        executor_memory="1g",
        conf={"spark.driver.host": cluster.host, "spark.pyspark.python": sys.executable},
    )
    try:
        assert spark.sparkContext.master == cluster.master_url
        settings = dict(factors=32, iterations=8, regularization=0.3, random_state=0)
        model = SparkALS(**settings, spark=spark).fit(train)
        # both workers host an executor of this application
        busy = [w for w in cluster.alive_workers() if w["coresused"] == 1]
        assert len(busy) == 2
        als = model.to_deepcuts()
    finally:
        spark.stop()
    local = ALS(**settings, reg_scaling="activity", solver="cholesky").fit(train)
    cl = evaluate(als, train, test, k=(10,), metrics=("ndcg",))[1]["ndcg@10"]
    lo = evaluate(local, train, test, k=(10,), metrics=("ndcg",))[1]["ndcg@10"]
    assert abs(cl - lo) <= 0.05 * lo, (cl, lo)
    assert cl > 0.2  # a real model, not a degenerate one (popularity is about 0.15)


def test_cluster_session_checks_its_master():
    with pytest.raises(DeepcutsError, match="spark://HOST:PORT"):
        cluster_session("local[2]")
    with pytest.raises(DeepcutsError, match="not started by spark-submit"):
        cluster_session(None)
    with pytest.raises(DeepcutsError, match="executor_memory"):
        cluster_session("spark://h:7077", executor_memory="lots")
