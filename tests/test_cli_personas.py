"""Personas on the command line (issues 4, 12): deepcuts personas, recommend --persona/--blend/
--persona-mix, with the default persona model (post-hoc personas)."""

import json

import pytest

from deepcuts.cli import main


@pytest.fixture(scope="module")
def persona_model(tmp_path_factory):
    out = tmp_path_factory.mktemp("m") / "per"
    argv = ["train", "--model", "persona", "--param", "factors=32", "iterations=6",
            "-o", str(out)]  # fmt: skip
    assert main(argv) == 0
    return out


def _recs(model, capsys, *extra):
    argv = ["recommend", "--model-file", str(model), "--user", "2", "-n", "6", "--format", "json"]
    assert main([*argv, *extra]) == 0
    return json.loads(capsys.readouterr().out)[0]["items"]


def test_personas_command_lists_shares_and_labels(persona_model, capsys):
    assert (
        main(["personas", "--model-file", str(persona_model), "--user", "2", "--format", "json"])
        == 0
    )
    doc = json.loads(capsys.readouterr().out)
    rows = doc[0]["personas"]
    assert doc[0]["user"] == 2 and len(rows) >= 2
    assert abs(sum(r["share"] for r in rows) - 1.0) < 1e-6
    assert all(r["label"] and r["top_artists"] for r in rows)
    # issue 12: every persona can be shown (>= 5% of plays, >= 3 artists), labels distinct
    assert all(r["share"] >= 0.05 and r["n_items"] >= 3 for r in rows)
    assert len({r["label"] for r in rows}) == len(rows)
    assert main(["personas", "--model-file", str(persona_model), "--user", "2"]) == 0
    assert "% of plays" in capsys.readouterr().out


def test_recommend_from_one_persona_or_a_mix(persona_model, capsys):
    assert (
        main(["personas", "--model-file", str(persona_model), "--user", "2", "--format", "json"])
        == 0
    )
    n_personas = len(json.loads(capsys.readouterr().out)[0]["personas"])
    for p in range(n_personas):
        items = _recs(persona_model, capsys, "--persona", str(p))
        assert len(items) == 6 and {r["persona"] for r in items} == {p}
    mixed = _recs(persona_model, capsys, "--persona-mix", "0.5,0.5")
    assert len(mixed) == 6 and {r["persona"] for r in mixed} == {0, 1}
    assert len(_recs(persona_model, capsys, "--blend")) == 6


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--persona", "7"], "persona=7 does not exist"),
        (["--persona-mix", "a,b"], "expected comma-separated numbers"),
        (["--persona", "0", "--blend"], "only one of"),
    ],
)
def test_bad_persona_options_are_one_line_errors(persona_model, capsys, extra, message):
    argv = ["recommend", "--model-file", str(persona_model), "--user", "2", *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1


def test_persona_options_need_a_persona_model(tmp_path, capsys):
    out = tmp_path / "pop"
    assert main(["train", "--model", "popularity", "-o", str(out)]) == 0
    capsys.readouterr()
    assert main(["recommend", "--model-file", str(out), "--user", "2", "--persona", "0"]) == 2
    assert "need a persona model" in capsys.readouterr().err
    assert main(["personas", "--model-file", str(out), "--user", "2"]) == 2
    assert "one vector per user" in capsys.readouterr().err
