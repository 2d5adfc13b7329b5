"""deepcuts train | recommend | evaluate."""

import json

import pandas as pd
import pytest

from deepcuts.cli import main

FAST = ["--metrics", "ndcg", "recall", "coverage", "novelty"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("m") / "knn"
    assert (
        main(["train", "--model", "itemknn", "--param", "k=20", "similarity=bm25", "-o", str(out)])
        == 0
    )
    return out


def test_train_writes_model(trained, capsys):
    assert trained.with_suffix(".npz").exists() and trained.with_suffix(".json").exists()
    manifest = json.loads(trained.with_suffix(".json").read_text())
    assert manifest["class"] == "ItemKNN" and manifest["params"]["k"] == 20


def test_recommend_formats(trained, capsys):
    assert (
        main(["recommend", "--model-file", str(trained), "--user", "2", "--user", "3", "-n", "4"])
        == 0
    )
    out = capsys.readouterr().out
    assert "user 2:" in out and "user 3:" in out and "  4. " in out
    assert (
        main(
            [
                "recommend",
                "--model-file",
                str(trained),
                "--user",
                "2",
                "-n",
                "3",
                "--format",
                "json",
            ]
        )
        == 0
    )
    doc = json.loads(capsys.readouterr().out)
    assert doc[0]["user"] == 2 and [r["rank"] for r in doc[0]["items"]] == [1, 2, 3]
    assert {"item", "name", "score"} <= set(doc[0]["items"][0])
    assert (
        main(["recommend", "--model-file", str(trained), "--user", "2", "3", "--format", "csv"])
        == 0
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("user,item,name,score,rank") and len(lines) == 21


@pytest.mark.parametrize(
    "argv,message",
    [
        (["train", "--model", "svd", "-o", "x"], "unknown model 'svd'"),
        (["train", "--model", "itemknn", "--param", "k=lots", "-o", "x"], "k='lots'"),
        (["train", "--model", "itemknn", "--param", "k", "-o", "x"], "expected NAME=VALUE"),
        (["train", "--model", "itemknn", "--param", "depth=3", "-o", "x"], "no parameter"),
        (["train", "--data", "nowhere.npz", "--model", "popularity", "-o", "x"], "nowhere.npz"),
        (["recommend", "--model-file", "missing-model", "--user", "2"], "not found"),
        (["evaluate", "--model", "itemknn", "--sweep", "k"], "NAME=V1,V2"),
        (["evaluate", "--model", "popularity", "--param", "k=3"], "none of the models"),
        (["evaluate", "--model", "itemknn:similarity=dice"], "similarity"),
        (["evaluate", "--model", "popularity", "--test-fraction", "2"], "test-fraction"),
        (["evaluate", "--model", "popularity", "--split", "leave-last-out"], "timestamps"),
        (["evaluate", "--model", "popularity", "--plot", "out.pdf"], "PNG"),
    ],
)
def test_bad_options_exit_2(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_recommend_unknown_user(trained, capsys):
    assert main(["recommend", "--model-file", str(trained), "--user", "999999"]) == 2
    assert "unknown user" in capsys.readouterr().err
    assert main(["recommend", "--model-file", str(trained), "--user", "bob"]) == 2
    assert "not an integer" in capsys.readouterr().err


def test_evaluate_table_json_csv(tmp_path, capsys):
    j, c = tmp_path / "r.json", tmp_path / "r.csv"
    argv = ["evaluate", "--model", "popularity", "--model", "itemknn:k=30,similarity=bm25",
            "--k", "10", "20", "--json", str(j), "--csv", str(c), *FAST]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "ndcg@10" in out and "itemknn:k=30,similarity=bm25" in out
    doc = json.loads(j.read_text())
    assert doc["split"] == "user-holdout" and doc["seed"] == 0 and doc["k"] == [10, 20]
    pop, knn = doc["results"]
    assert knn["params"]["k"] == 30 and knn["metrics"]["ndcg@10"] > pop["metrics"]["ndcg@10"]
    table = pd.read_csv(c)
    assert table["model"].tolist() == ["popularity", "itemknn:k=30,similarity=bm25"]
    assert table.loc[1, "recall@20"] == pytest.approx(knn["metrics"]["recall@20"])


def test_evaluate_sweep_plot(tmp_path, capsys):
    png, c = tmp_path / "s.png", tmp_path / "s.csv"
    argv = ["evaluate", "--model", "itemknn", "--param", "similarity=bm25", "--sweep",
            "k=5,50", "--k", "10", "--plot", str(png), "--csv", str(c), *FAST]  # fmt: skip
    assert main(argv) == 0
    assert png.read_bytes()[:4] == b"\x89PNG"
    table = pd.read_csv(c)
    assert table["k"].tolist() == [5, 50]
    assert table["coverage@10"].iloc[0] != table["coverage@10"].iloc[1]
    assert "itemknn k=5" in capsys.readouterr().out


@pytest.mark.slow
def test_evaluate_als(capsys):
    argv = ["evaluate", "--model", "als:factors=16,iterations=3", "--k", "10", *FAST]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "als:factors=16,iterations=3" in out and "ndcg@10" in out
