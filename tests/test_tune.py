"""deepcuts tune (issue 16): seeded Optuna search across families on a validation split of the
training data, pruning, table, plot, the winner saved and tested once."""

from __future__ import annotations

import sys

import pytest

from deepcuts.cli import main
from deepcuts.evaluation.tuning import parse_budget, plot_trials, require_optuna, tune
from deepcuts.exceptions import DeepcutsError
from deepcuts.models import load_model
from deepcuts.testing import planted_blocks

pytest.importorskip("optuna")


@pytest.fixture(scope="module")
def data():
    return planted_blocks(150, 40, 4, density=0.4, random_state=1)


def test_tune_is_seeded_and_searches_families(data, tmp_path):
    kw = dict(budget_s=None, n_trials=6, random_state=3)
    a = tune(data, **kw)
    b = tune(data, **kw)
    assert a.table["family"].tolist() == b.table["family"].tolist()
    assert a.params == b.params and a.value == pytest.approx(b.value)
    assert a.table["family"].nunique() == 5  # one starting point per family first
    assert set(a.table["state"]) <= {"COMPLETE", "PRUNED"}
    done = a.table[a.table["state"] == "COMPLETE"]
    assert a.value == pytest.approx(done["ndcg@10"].max())
    assert a.model is not None and a.model.interactions_ is data  # refitted on all of it
    png = plot_trials(a.table, "ndcg@10", tmp_path / "t.png")
    assert png.stat().st_size > 5000


def test_errors_and_budget():
    assert parse_budget("2m") == 120.0
    with pytest.raises(DeepcutsError, match="budget"):
        parse_budget("soon")
    x = planted_blocks(40, 20, 2, random_state=0)
    with pytest.raises(DeepcutsError, match="families"):
        tune(x, families=["svd"], n_trials=1)
    with pytest.raises(DeepcutsError, match="n_trials"):
        tune(x, budget_s=None)


def test_missing_optuna_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)
    with pytest.raises(DeepcutsError, match=r"pip install 'deepcuts\[tune\]'"):
        require_optuna()


def test_cli_saves_the_winner_and_reports_test_metrics(data, tmp_path, capsys):
    path = tmp_path / "plays"
    data.save(path)
    out = tmp_path / "best"
    rc = main(["tune", "--data", str(path), "--budget", "1m", "--trials", "6", "--families",
               "rp3beta", "itemknn", "--output", str(out), "--plot", str(tmp_path / "p.png"),
               "--table", str(tmp_path / "t.csv"), "--no-progress"])  # fmt: skip
    text = capsys.readouterr().out
    assert rc == 0
    assert "winner:" in text and text.count("test (user-holdout") == 1
    model = load_model(out)
    assert type(model).__name__ in ("RP3beta", "ItemKNN")
    assert (tmp_path / "p.png").exists() and (tmp_path / "t.csv").exists()


def test_service_picks_its_model_on_the_served_data_and_can_be_pinned(tmp_path):
    pytest.importorskip("sqlalchemy")
    from serving_helpers import block_of, planted_frames

    from deepcuts.serving.service import RecommenderService
    from deepcuts.serving.store import Store, default_url

    store = Store(default_url(tmp_path))
    store.import_play_counts(*planted_frames())
    params = {"budget_s": "3s", "families": "rp3beta,itemknn"}
    svc = RecommenderService(store, tmp_path, model="auto", model_params=params, seed=False)
    assert svc.model_params["budget_s"] == 3.0
    svc.start()
    assert svc.handle.kind == "auto"
    assert type(svc.handle.model).__name__ in ("RP3beta", "ItemKNN")
    items = svc.recommend("u5", n=3)["items"]
    assert all(block_of(it["artist"]) == 0 for it in items)
    svc.retrain_in = "thread"
    svc.retrain("popularity", {})  # pinned
    assert svc.wait(60)["status"] == "done" and svc.handle.kind == "popularity"
    with pytest.raises(DeepcutsError, match="families"):
        RecommenderService(store, tmp_path, model="auto", model_params={"families": "svd"})
