"""Mutation check: deliberate bugs on the core paths must each fail at least one test.

Each mutation of :data:`MUTATIONS` replaces one exact piece of source in a copy of ``src/``
(at a fixed place, so numba's cache serves every file the mutation leaves alone), runs the
tests that should catch it against the copy, and counts the mutation "killed" when pytest
fails. The first mutations are the bugs of issue 13 (point 9) that once survived every test.

Run (about 5-10 minutes on two cores, most of it numba compiling the mutated kernels)::

    PYTHONPATH=src python benchmarks/mutation_check.py            # all
    PYTHONPATH=src python benchmarks/mutation_check.py rarity-lo  # some, by name

Prints ``mutation <name> = killed|SURVIVED|not applicable`` per mutation and
``mutations_killed = k / n``; exits 1 if any survived, and writes docs/mutation_check.json.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = Path(tempfile.gettempdir()) / "deepcuts-mutants"

#: (name, file under src/deepcuts, exact old text, new text, test files, extra environment)
MUTATIONS = [
    (
        "foldin-row-local-weighting",  # bm25 of a folded-in row on its own, not the corpus
        "models/als.py",
        "if self.weighting is None or name in _ROW_LOCAL:",
        "if True:",
        ["tests/test_als.py", "tests/test_issue13_regressions.py"],
        {},
    ),
    (
        "rarity-lo",  # zero scores counted as positive in the rarity knob's shift
        "rerank/rarity.py",
        "positive = lo > 0",
        "positive = lo >= 0",
        [
            "tests/test_rerank.py",
            "tests/test_rarity_property.py",
            "tests/test_issue13_regressions.py",
        ],
        {},
    ),
    (
        "persona-l2-doubled",
        "models/persona.py",
        "reg = np.full((n, P), self.regularization, np.float32)",
        "reg = np.full((n, P), 2 * self.regularization, np.float32)",
        ["tests/test_persona.py", "tests/test_issue13_regressions.py"],
        {},
    ),
    (
        "persona-assignment-boundary",  # the kernel only: its reference must disagree
        "models/_persona_kernels.py",
        "            if m >= pu:\n                for p in range(pu):\n                    if cnt[p] == 0:\n                        worst = -1",
        "            if m > pu:\n                for p in range(pu):\n                    if cnt[p] == 0:\n                        worst = -1",
        ["tests/test_persona.py", "tests/test_issue13_regressions.py"],
        {},
    ),
    (
        "store-listened-at-now",
        "serving/store.py",
        '"listened_at": now if x.listened_at is None else int(x.listened_at),',
        '"listened_at": now,',
        ["tests/test_serving_store.py", "tests/test_issue13_regressions.py"],
        {},
    ),
    (
        "store-skip-as-full-play",
        "serving/store.py",
        '"fraction": None if x.fraction is None else float(x.fraction),',
        '"fraction": None if not x.fraction else float(x.fraction),',
        ["tests/test_serving_store.py", "tests/test_issue13_regressions.py"],
        {},
    ),
    (
        "cg-scratch-one-row-short",
        "models/_als_kernels.py",
        "Yu = np.empty((mx, f), np.float32)",
        "Yu = np.empty((mx - 1, f), np.float32)",
        ["tests/test_als_kernels.py"],
        {"NUMBA_BOUNDSCHECK": "1"},
    ),
    (
        "ndcg-ideal-ignores-k",
        "evaluation/metrics/accuracy.py",
        "ideal_cum = np.concatenate([[0.0], np.cumsum(disc)])\n"
        "    idcg = ideal_cum[np.minimum(n_rel, int(k)).astype(np.int64)]",
        "ideal_cum = np.concatenate([[0.0], np.cumsum(_discounts(max(k, n_rel.max(initial=0))))])\n"
        "    idcg = ideal_cum[n_rel.astype(np.int64)]",
        ["tests/test_metrics.py", "tests/test_issue13_regressions.py"],
        {},
    ),
    (
        "map-denominator-ignores-k",
        "evaluation/metrics/accuracy.py",
        "ap = (prec_at_r * hits).sum(axis=1) / np.minimum(n_rel, int(k))",
        "ap = (prec_at_r * hits).sum(axis=1) / np.maximum(n_rel, 1)",
        ["tests/test_metrics.py", "tests/test_issue13_regressions.py"],
        {},
    ),
    # ---- further core paths
    (
        "service-id-rule-skipped",
        "serving/_history.py",
        "return check_id(str(user))",
        "return str(user).strip()",
        ["tests/test_serving_hardening.py"],
        {},
    ),
    (
        "upload-inflated-size-unchecked",
        "serving/_limits.py",
        "        if self.bytes > self.limit:",
        "        if False:",
        ["tests/test_serving_hardening.py"],
        {},
    ),
    (
        "worker-answers-with-older-model",
        "serving/service.py",
        "            if h is not None and self._newest > (h.model_id or -1):\n                h = self._wait_newest()",
        "            pass",
        ["tests/test_serving_hardening.py"],
        {},
    ),
]


def _prepare() -> Path:
    """A copy of src/ at WORK (file times kept, so numba's cache stays valid)."""
    dst = WORK / "src"
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(ROOT / "src", dst, copy_function=shutil.copy2,
                    ignore=shutil.ignore_patterns("*.nbi", "*.nbc"))  # fmt: skip
    return dst


def run(names: list[str]) -> int:
    src = _prepare()
    todo = [m for m in MUTATIONS if not names or m[0] in names]
    results = {}
    for name, rel, old, new, tests, env in todo:
        target = src / "deepcuts" / rel
        original = ROOT / "src" / "deepcuts" / rel
        shutil.copy2(original, target)
        text = target.read_text()
        if text.count(old) != 1:
            results[name] = "not applicable"
            print(f"mutation {name} = not applicable (the text is not in {rel} once)", flush=True)
            continue
        target.write_text(text.replace(old, new))
        t = time.perf_counter()
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-x",
                "-p",
                "no:cacheprovider",
                "--no-header",
                "-o",
                "addopts=",
                "-o",
                "pythonpath=",
                "-m",
                "not realdata",
                *tests,
            ],  # fmt: skip
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(src), **env},
            capture_output=True,
            text=True,
            timeout=1800,
        )
        shutil.copy2(original, target)  # restore for the next mutation
        # pytest: 1 = tests failed; a crash of the interpreter (heap corruption) kills too
        killed = proc.returncode != 0 and proc.returncode != 5
        results[name] = "killed" if killed else "SURVIVED"
        last = (proc.stdout.strip().splitlines() or [""])[-1]
        print(
            f"mutation {name} = {results[name]}  ({time.perf_counter() - t:.0f}s; {last})",
            flush=True,
        )
    killed = sum(v == "killed" for v in results.values())
    print(f"mutations_killed = {killed} / {len(results)}")
    if not names:
        out = ROOT / "docs" / "mutation_check.json"
        out.write_text(json.dumps({"results": results, "killed": killed}, indent=2) + "\n")
    return 0 if all(v == "killed" for v in results.values()) else 1


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
