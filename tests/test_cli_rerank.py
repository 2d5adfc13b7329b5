"""Discovery knobs on the command line (issue 5): --rarity, --band, --diversity, --artist-cap."""

import json

import numpy as np
import pytest

from deepcuts.cli import main
from deepcuts.data import load_lastfm2k


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("m") / "knn"
    argv = ["train", "--model", "itemknn", "--param", "k=20", "similarity=bm25", "-o", str(out)]
    assert main(argv) == 0
    return out


def _items(trained, capsys, *knobs):
    argv = ["recommend", "--model-file", str(trained), "--user", "2", "3", "-n", "10", "--format"]
    assert main([*argv, "json", *knobs]) == 0
    doc = json.loads(capsys.readouterr().out)
    return [[r["item"] for r in u["items"]] for u in doc]


def test_recommend_knobs_move_toward_rare_items(trained, capsys):
    x = load_lastfm2k()
    pop = dict(zip(x.item_map.ids.tolist(), x.item_popularity().tolist()))
    base = _items(trained, capsys)
    rare = _items(trained, capsys, "--rarity", "0.5")
    band = _items(trained, capsys, "--band", "60:95", "--diversity", "0.5")
    assert all(len(lst) == 10 for lst in base + rare + band)
    assert base != rare
    mean = lambda lists: np.mean([np.log(pop[i]) for lst in lists for i in lst])  # noqa: E731
    assert mean(rare) < mean(base)
    p95 = np.percentile(x.item_popularity(), 95)
    assert all(pop[i] <= p95 for lst in band for i in lst)
    assert _items(trained, capsys, "--rarity", "1") == base


@pytest.mark.parametrize(
    "knobs, message",
    [
        (["--rarity", "5"], "--rarity must be a number in [-3, 3]"),
        (["--rarity", "nan"], "--rarity must be a number in [-3, 3]"),
        (["--band", "90:10"], "--band must have low < high"),
        (["--band", "10"], "--band '10': expected LOW:HIGH"),
        (["--band", "0:120"], "--band high must be a number in [0, 100]"),
        (["--diversity", "1.5"], "--diversity must be a number in [0, 1]"),
        (["--artist-cap", "0"], "--artist-cap must be a positive integer"),
    ],
)
def test_out_of_range_knobs_exit_2_with_one_line(trained, capsys, knobs, message):
    assert main(["recommend", "--model-file", str(trained), "--user", "2", *knobs]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    argv = ["evaluate", "--model", "popularity", *knobs]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_artist_cap_on_artist_level_data_is_a_clear_error(trained, capsys):
    assert (
        main(["recommend", "--model-file", str(trained), "--user", "2", "--artist-cap", "2"]) == 2
    )
    assert "column 'artist'" in capsys.readouterr().err


def test_evaluate_knob_and_knob_sweep(tmp_path, capsys):
    out = tmp_path / "r.json"
    argv = ["evaluate", "--model", "itemknn:k=20,similarity=bm25", "--k", "10", "--metrics",
            "ndcg", "novelty", "arp", "--sweep", "rarity=1,0.9,0.7", "--json", str(out)]  # fmt: skip
    assert main(argv) == 0
    doc = json.loads(out.read_text())
    nov = [r["metrics"]["novelty@10"] for r in doc["results"]]
    assert len(nov) == 3 and nov[0] < nov[1] < nov[2]
    assert doc["results"][1]["rerankers"] == ["RarityKnob(rarity=0.9)"]
    capsys.readouterr()
    argv = ["evaluate", "--model", "popularity", "--k", "10", "--metrics", "novelty",
            "--band", "50:90", "--json", str(out)]  # fmt: skip
    assert main(argv) == 0
    doc = json.loads(out.read_text())
    assert doc["knobs"] == {"band": "50:90"} and doc["results"][0]["metrics"]["novelty@10"] > 5
    assert main(["evaluate", "--model", "popularity", "--sweep", "rarity=1,x"]) == 2
    assert "is not a number" in capsys.readouterr().err
    assert main(["evaluate", "--model", "popularity", "--rarity", "1", "--sweep", "rarity=1"]) == 2
    assert "give only one" in capsys.readouterr().err
