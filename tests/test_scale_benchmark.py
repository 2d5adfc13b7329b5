"""benchmarks/scale.py's pieces at a tiny scale (issue 15): every step runs and reports."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("implicit", reason="the bench extra (implicit) is not installed")
pytest.importorskip("faiss", reason="the ann extra (faiss-cpu) is not installed")

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "scale.py"


@pytest.fixture(scope="module")
def scale():
    spec = importlib.util.spec_from_file_location("scale_bench", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_scale_steps_at_a_tiny_scale(tmp_path, scale):
    task = {"scale": 0.001, "seed": 0, "dir": str(tmp_path), "iterations": 2,
            "topk_users": 300, "library": "deepcuts"}  # fmt: skip
    gen = scale.step_generate(task)
    assert (gen["n_users"], gen["n_items"]) == (1019, 385)
    ing = scale.step_ingest(task)
    assert ing["ingest_lines"] == gen["nnz"] and ing["ingest_lines_per_s"] > 0
    als = scale.step_als(task)
    assert als["als_deepcuts_s_per_iter"] > 0 and (tmp_path / "model.npz").exists()
    imp = scale.step_als({**task, "library": "implicit", "implicit_iterations": 1})
    assert imp["als_implicit_s_per_iter"] > 0 and imp["als_implicit_iterations"] == 1
    per = scale.step_persona(task)
    assert per["saveload_als_identical"] and per["saveload_persona_identical"]
    assert 1.0 <= per["personas_per_user"] <= per["persona_max"] <= 5
    assert per["persona_model_mib"] > 0 and per["load_persona_s"] > 0
    bat = scale.step_batch(task)
    assert bat["batch_all_users"] == gen["n_users"] and bat["batch_all_full_lists"] > 0.9
    top20 = np.load(tmp_path / "top20.npy")
    assert top20.shape == (gen["n_users"], 20)
    # a ranked list never repeats an item nor holds a played one
    x = scale._load_matrix(tmp_path).matrix
    for u in (0, 500, 1018):
        row = top20[u][top20[u] >= 0]
        assert len(set(row)) == len(row) and not x[u, row].nnz
    for lib, r in (("deepcuts", als), ("implicit", imp)):  # both measured the same way
        assert r[f"als_{lib}_cpu_s_per_iter"] > 0 and r[f"als_{lib}_peak_mib"] >= 0
    top = scale.step_topk(task)
    assert top["topk_users"] == 300
    assert top["implicit_recall@20"] == pytest.approx(1.0)  # both exact on the same factors
    assert 0.9 <= top["ann_recall@20"] <= 1.0
    r = {**gen, **ing, **als, **imp, **top, "als_time_ratio": 1.0, "als_memory_ratio": 1.0}
    names = scale.targets(r)
    assert "ANN recall@20 >= 0.95 at <= 1 ms/user" in names and len(names) == 6
    names = scale.targets({**r, **per})
    assert names["saved models load and rank identically"] == (True, True)
