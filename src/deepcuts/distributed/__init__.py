"""Distributed training and batch recommendation on Apache Spark (optional: ``deepcuts[spark]``).

For data that do not fit one machine: read listening logs into Spark (:func:`read_lastfm1k`,
:func:`read_table`, :func:`read_msd_taste_profile`), train Spark MLlib's implicit ALS through
:class:`SparkALS`, export the factors to a regular :class:`deepcuts.models.ALS`
(:meth:`SparkALS.to_deepcuts`: save, serve, re-rank as usual) and compute every user's top-n
in the executors with deepcuts' own scoring and knobs (:func:`recommend_all`). A session
runs on one machine (:func:`local_session`) or a cluster (:func:`cluster_session`,
``spark://HOST:PORT``, YARN, Kubernetes); :func:`standalone_cluster` starts a small standalone
cluster on this machine to try the cluster path.

Importing this package does not import pyspark; the functions raise a
:class:`~deepcuts.exceptions.DeepcutsError` saying how to install it when it is missing.
See ``docs/distributed.md``.
"""

from deepcuts.distributed._session import (
    active_session,
    cluster_session,
    find_java,
    local_session,
    require_spark,
)
from deepcuts.distributed.als import SparkALS
from deepcuts.distributed.batch import recommend_all
from deepcuts.distributed.cluster import StandaloneCluster, standalone_cluster
from deepcuts.distributed.readers import (
    SparkInteractions,
    read_lastfm1k,
    read_msd_taste_profile,
    read_table,
)

__all__ = [
    "SparkALS",
    "SparkInteractions",
    "StandaloneCluster",
    "active_session",
    "cluster_session",
    "find_java",
    "local_session",
    "read_lastfm1k",
    "read_msd_taste_profile",
    "read_table",
    "recommend_all",
    "require_spark",
    "standalone_cluster",
]
