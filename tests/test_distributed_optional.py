"""deepcuts works without pyspark: importing it never needs Spark, and the distributed
functions say how to install it (runs whether or not pyspark is installed)."""

import subprocess
import sys

CODE = r"""
import sys
sys.modules["pyspark"] = None  # as if pyspark were not installed
import deepcuts, deepcuts.models, deepcuts.cli
import deepcuts.distributed as d
from deepcuts.exceptions import DeepcutsError
assert "pyspark" not in [m for m in sys.modules if sys.modules[m] is not None]
try:
    d.local_session()
except DeepcutsError as e:
    print(e)
try:
    d.SparkALS().fit(None)
except DeepcutsError as e:
    print(e)
from deepcuts.cli import main
sys.exit(main(["spark-train", "--input", "x.tsv", "--format", "lastfm1k", "--out", "m"]))
"""


def test_distributed_without_pyspark():
    r = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 2
    for line in lines:
        assert "pip install 'deepcuts[spark]'" in line and "Java" in line
    assert "pip install 'deepcuts[spark]'" in r.stderr and "Traceback" not in r.stderr
