"""``deepcuts ingest``, ``train`` and ``recommend`` on a corpus of hostile files (issue 13):
no traceback, no partial output, no silently wrong counts; and the checks of ``-o``,
``--seed``, ``--encoding``, ``--max-upload-mb`` and ``deepcuts db current``."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hostile_files import cases, write_corpus

from deepcuts.cli import main
from deepcuts.data import Interactions


def _run(capsys, *argv) -> tuple[int, str, str]:
    """``deepcuts ARGV`` in this process: an exception escaping main() is a traceback."""
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as e:  # argparse errors: usage + one line, status 2
        rc = e.code
    out, err = capsys.readouterr()
    return rc, out, err


def _one_error_line(err: str, command: str) -> None:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert lines and lines[-1].startswith(f"deepcuts {command}: error: "), err
    assert "Traceback" not in err


def test_the_corpus_is_big_enough():
    assert len(cases()) >= 60
    assert len({name for name, *_ in cases()}) == len(cases())


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("hostile") / "files")


@pytest.mark.parametrize("k", range(len(cases())), ids=[c[0] for c in cases()])
def test_hostile_file_through_ingest_train_recommend(k, corpus, tmp_path, capsys):
    path, args, expected = corpus[k]
    out = tmp_path / "data"
    rc, _, err = _run(capsys, "ingest", path, *args, "-o", out)
    written = sorted(p.name for p in tmp_path.iterdir())
    if rc != 0:
        assert expected != "error" or rc == 2
        assert expected in ("error", "any"), f"{path.name} refused: {err}"
        _one_error_line(err, "ingest")
        assert "deepcuts-utf8-" not in err  # the original file is named, not a temp copy
        assert written == [], f"{path.name}: partial output {written}"
        return
    assert expected != "error", f"{path.name} was accepted"
    assert written == ["data.json", "data.npz"]
    x = Interactions.load(out)
    assert np.isfinite(x.matrix.data).all() and (x.matrix.data >= 0).all()
    if isinstance(expected, dict):
        coo = x.matrix.tocoo()
        got = {
            (str(x.user_map.ids[u]), str(x.item_map.ids[i])): float(v)
            for u, i, v in zip(coo.row, coo.col, coo.data)
        }
        assert got == expected, path.name
    model = tmp_path / "model"
    rc, _, err = _run(
        capsys, "train", "--data", out, "--model", "als", "--param", "factors=4",
        "--param", "iterations=3", "-o", model,
    )  # fmt: skip
    assert rc == 0, err
    user = str(x.user_map.ids[0])
    rc, text, err = _run(
        capsys, "recommend", "--model-file", model, "--user", user, "--format", "json", "-n", "2"
    )
    assert rc == 0, err
    recs = json.loads(text)[0]["items"]
    assert all(np.isfinite(r["score"]) for r in recs)


def test_outputs_are_never_overwritten_by_surprise(tmp_path, capsys):
    csv = tmp_path / "plays.csv"
    csv.write_text("user,item,count\na,x,3\nb,y,1\nb,x,1\n")
    data, model = tmp_path / "d", tmp_path / "m"
    assert _run(capsys, "ingest", csv, "-o", data)[0] == 0
    before = (tmp_path / "d.npz").read_bytes()
    # the dataset as the model's output: refused, even with --force
    for force in ([], ["--force"]):
        rc, _, err = _run(
            capsys, "train", "--data", data, "--model", "popularity", "-o", data, *force
        )
        assert rc == 2 and "input" in err
    assert (tmp_path / "d.npz").read_bytes() == before
    assert _run(capsys, "train", "--data", data, "--model", "popularity", "-o", model)[0] == 0
    assert _run(capsys, "train", "--data", data, "--model", "popularity", "-o", model)[0] == 0
    rc, _, err = _run(capsys, "train", "--data", data, "--model", "itemknn", "-o", model)
    assert rc == 2 and "--force" in err and "Popularity" in err
    assert (
        _run(capsys, "train", "--data", data, "--model", "itemknn", "-o", model, "--force")[0] == 0
    )
    rc, _, err = _run(capsys, "ingest", csv, "-o", model)  # a dataset over a model
    assert rc == 2 and "--force" in err
    other = tmp_path / "notes.json"
    other.write_text("my notes")
    rc, _, err = _run(capsys, "ingest", csv, "-o", tmp_path / "notes")
    assert rc == 2 and "not a file deepcuts wrote" in err
    assert other.read_text() == "my notes"
    rc, _, err = _run(capsys, "ingest", csv, "-o", csv.with_suffix(""), "--format", "table")
    assert rc == 0  # plays.json + plays.npz next to plays.csv: not the input


@pytest.mark.parametrize(
    "argv, words",
    [
        (["ingest", "x.csv", "--encoding", "nonsense", "-o", "o"], "unknown text encoding"),
        (["train", "--model", "als", "--seed", "-1", "-o", "o"], "--seed"),
        (["train", "--model", "als", "--seed", "2**40", "-o", "o"], "--seed"),
        (["serve", "--max-upload-mb", "-1"], "--max-upload-mb"),
        (["serve", "--max-upload-mb", "nan"], "--max-upload-mb"),
        (["serve", "--host", "0.0.0.0"], "--token"),
        (["serve", "--token", "short"], "16 characters"),
    ],
)
def test_bad_option_values_get_one_line(argv, words, capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("DEEPCUTS_API_TOKEN", raising=False)
    rc, _, err = _run(capsys, *argv, *(["--data-dir", tmp_path] if argv[0] == "serve" else []))
    assert rc == 2 and words in err and "Traceback" not in err


def test_db_current_on_a_bad_database_gets_one_line(tmp_path, capsys):
    pytest.importorskip("sqlalchemy")
    garbage = tmp_path / "garbage.sqlite3"
    garbage.write_bytes(b"this is not a database" * 100)
    rc, _, err = _run(capsys, "db", "current", "--db", f"sqlite:///{garbage}")
    assert rc == 2
    _one_error_line(err, "db")
    rc, _, err = _run(
        capsys, "db", "current", "--db", "postgresql+psycopg://nobody@127.0.0.1:1/none"
    )
    assert rc == 2
    _one_error_line(err, "db")
