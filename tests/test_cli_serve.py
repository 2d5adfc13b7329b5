"""``deepcuts db`` and ``deepcuts serve`` command line."""

from __future__ import annotations

import pytest

pytest.importorskip("sqlalchemy")
pytest.importorskip("fastapi")

from deepcuts.cli import main


def test_db_upgrade_and_current(tmp_path, capsys):
    assert main(["db", "current", "--data-dir", str(tmp_path)]) == 0
    assert "none (run upgrade)" in capsys.readouterr().out
    assert main(["db", "upgrade", "--data-dir", str(tmp_path)]) == 0
    assert "revision 0001" in capsys.readouterr().out
    assert (tmp_path / "deepcuts.sqlite3").exists()
    assert main(["db", "current", "--db", f"sqlite:///{tmp_path / 'deepcuts.sqlite3'}"]) == 0
    assert "revision 0001" in capsys.readouterr().out


def test_serve_errors_are_one_line(tmp_path, capsys):
    assert main(["serve", "--data-dir", str(tmp_path), "--model", "nonsense"]) == 2
    assert "unknown model 'nonsense'" in capsys.readouterr().err
    assert main(["serve", "--data-dir", str(tmp_path), "--no-seed"]) == 2
    err = capsys.readouterr().err
    assert "no plays" in err and "Traceback" not in err
    assert main(["serve", "--db", "mysql://u@h/db"]) == 2
    assert "not supported" in capsys.readouterr().err


@pytest.mark.slow
def test_first_start_seeds_the_bundled_lastfm2k(tmp_path):
    """What ``deepcuts serve`` does with no set-up (with a fast model instead of ALS)."""
    from deepcuts.serving.service import RecommenderService
    from deepcuts.serving.store import Store, default_url

    store = Store(default_url(tmp_path))
    svc = RecommenderService(store, tmp_path, model="popularity")
    svc.start()
    c = store.counts()
    assert c["users"] == 1892 and c["play_counts"] == 92_743  # pairs merged by artist key
    assert c["artists"] == 17_476 and c["models"] == 1
    recs = svc.recommend("2", n=3)["items"]
    assert [r["popularity_rank"] for r in recs] == sorted(r["popularity_rank"] for r in recs)
    assert svc.similar("The Beatles", n=1)["artist"] == "beatles"
    # a second start loads the registered model instead of training again
    again = RecommenderService(Store(default_url(tmp_path)), tmp_path, model="popularity")
    again.start()
    assert again.handle.model_id == svc.handle.model_id and store.counts()["models"] == 1


def test_serving_a_model_trained_elsewhere(tmp_path, capsys):
    """``--model-file``: a saved model (as ``deepcuts train`` or ``spark-train`` write it) is
    registered, copied into the data dir and served; a running service swaps to it."""
    from serving_helpers import planted_frames

    from deepcuts.data import Interactions
    from deepcuts.models import ALS
    from deepcuts.serving.service import RecommenderService
    from deepcuts.serving.store import Store, default_url

    plays, artists = planted_frames()
    x = Interactions.from_frame(plays)
    external = ALS(factors=8, iterations=6, random_state=3).fit(x)
    external.save(tmp_path / "elsewhere" / "als")

    data = tmp_path / "served"
    store = Store(default_url(data))
    store.import_play_counts(plays, artists)
    svc = RecommenderService(store, data, model="popularity", seed=False)
    model_id = svc.import_model(tmp_path / "elsewhere" / "als.npz")
    svc.start()  # loads the imported model instead of training one
    assert svc.handle.model_id == model_id and svc.handle.kind == "als"
    row = store.active_model()
    assert row["id"] == model_id and row["status"] == "ready"
    assert row["path"].startswith(str(data / "models"))
    want = external.recommend(["u3"], n=5).items.tolist()
    assert [it["artist"] for it in svc.recommend("u3", n=5)["items"]] == want
    # a running service swaps at once
    other = ALS(factors=8, iterations=6, random_state=4).fit(x)
    other.save(tmp_path / "elsewhere" / "als2")
    second = svc.import_model(tmp_path / "elsewhere" / "als2")
    assert svc.handle.model_id == second != model_id
    assert svc.recommend("u3", n=5)["model"] == second

    # the command line: a missing file is a one-line error naming it
    missing = tmp_path / "nothing-here"
    assert main(["serve", "--data-dir", str(data), "--model-file", str(missing)]) == 2
    err = capsys.readouterr().err
    assert "nothing-here" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_serve_lets_idle_openmp_threads_sleep():
    """Issue 15: spinning faiss/BLAS OpenMP threads took the cores of 50 concurrent clients."""
    from deepcuts.cli._serve import passive_openmp

    env = {}
    assert passive_openmp(env) == {"OMP_WAIT_POLICY": "PASSIVE"}
    assert env["OMP_WAIT_POLICY"] == "PASSIVE"
    env = {"OMP_WAIT_POLICY": "ACTIVE"}  # the operator's choice wins
    assert passive_openmp(env) == {} and env["OMP_WAIT_POLICY"] == "ACTIVE"
