"""Issue 14, "the first hour with deepcuts": each point of the issue keeps its regression test."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from deepcuts.data import Interactions
from deepcuts.exceptions import DeepcutsError
from deepcuts.models import ALS, ItemKNN, PersonaALS, Popularity
from deepcuts.testing import planted_blocks


@pytest.fixture(scope="module")
def blocks():
    return planted_blocks(60, 30, 3, random_state=0)


#: small settings of every registry model (``deepcuts.models.MODELS``), for the contract tests
SMALL = {
    "popularity": {},
    "itemknn": {"k": 10},
    "als": {"factors": 4, "iterations": 2, "random_state": 0},
    "persona": {"factors": 4, "iterations": 2},
    "persona-als": {"factors": 4, "n_personas": 2, "iterations": 2, "random_state": 0},
    "bpr": {"factors": 4, "iterations": 2, "random_state": 0},
    "mixture": {"factors": 4, "n_personas": 2, "iterations": 2, "random_state": 0},
    "ease": {"regularization": 10.0},
    "rp3beta": {"neighbors": 10},
}


def _models():
    from deepcuts.models import MODELS

    return [MODELS[name](**params) for name, params in SMALL.items()]


def test_the_contract_tests_cover_every_registry_model():
    from deepcuts.models import MODELS

    assert set(SMALL) == set(MODELS), "add the new model to SMALL"


# ---------------------------------------------------------------- 1. unknown keywords
@pytest.mark.parametrize("model", _models(), ids=lambda m: type(m).__name__)
def test_unknown_keywords_raise_and_name_the_deepcuts_spelling(model, blocks):
    model.fit(blocks)
    with pytest.raises(DeepcutsError, match=r"'N'.*use n instead"):
        model.recommend(["u0"], N=3)
    with pytest.raises(DeepcutsError, match="use filter_played instead"):
        model.recommend(["u0"], filter_already_liked_items=False)
    with pytest.raises(DeepcutsError, match="unknown keyword"):
        model.recommend_history({"i0": 3}, nonsense=1)
    with pytest.raises(DeepcutsError, match="fit.*show_progress"):
        model.fit(blocks, show_progress=False)
    # the deepcuts spelling does what the alias was meant to do
    played = set(blocks.user_items("u0")["item"])
    kept = model.recommend(["u0"], n=30, filter_played=False).items
    assert played <= set(kept.tolist())
    # the knobs travel as re-rankers, so the new depth knob is never an unknown keyword
    from deepcuts.rerank import build_rerankers

    deep = model.recommend(["u0"], n=5, rerankers=build_rerankers(depth=0.6, floor=1))
    assert 0 < len(deep) <= 5
    with pytest.raises(DeepcutsError, match="unknown keyword.*'depth'"):
        model.recommend(["u0"], n=5, depth=0.6)


@pytest.mark.parametrize("model", _models(), ids=lambda m: type(m).__name__)
def test_every_model_fits_a_sparse_matrix_and_a_dataframe(model, blocks):
    m = sp.csr_matrix(blocks.matrix)
    a = model.fit(m).recommend([0, 1], n=3)
    assert set(a.queries.tolist()) == {0, 1}  # ids are the row indices
    r, c = m.nonzero()
    frame = pd.DataFrame({"user": r, "item": c, "count": np.asarray(m[r, c]).ravel()})
    b = model.fit(frame).recommend([0, 1], n=3)
    assert model.interactions_.nnz == m.nnz and len(b) == len(a)


# ---------------------------------------------------------------- 2. what a data scientist has
def test_fit_accepts_a_sparse_matrix_and_a_dataframe():
    m = sp.csr_matrix(np.array([[1, 0, 3], [0, 0, 2], [4, 1, 0]], np.float32))
    rec = Popularity().fit(m).recommend(1, n=2)
    assert rec.items.tolist() == [0, 1]  # ids are the column indices; item 2 is played
    assert Interactions(m).user_map.ids.tolist() == [0, 1, 2]
    df = pd.DataFrame({"uid": [1, 1, 2, 3], "artist": ["a", "b", "a", "c"], "plays": [3, 1, 5, 2]})
    model = Popularity(by="plays").fit(df, user_col="uid", item_col="artist", count_col="plays")
    assert model.interactions_.matrix.sum() == 11
    plain = pd.DataFrame({"user": [1, 1, 2], "item": ["a", "b", "a"], "count": [2, 1, 1]})
    assert ItemKNN().fit(plain).interactions_.matrix.sum() == 4
    with pytest.raises(DeepcutsError, match="user_col="):
        Popularity().fit(df)
    with pytest.raises(TypeError, match="csr_matrix"):
        Interactions(np.ones((2, 2)))


# ---------------------------------------------------------------- 3. defaults
def test_als_defaults_to_the_measured_best_and_names_the_implicit_setting():
    from deepcuts.models.als import IMPLICIT_EQUIVALENT

    params = ALS().get_params()
    assert (params["reg_scaling"], params["regularization"]) == ("activity", 0.3)
    assert IMPLICIT_EQUIVALENT == {"regularization": 0.01, "reg_scaling": "none"}
    assert ALS(**IMPLICIT_EQUIVALENT).reg_scaling == "none"


def test_benchmark_rows_with_implicits_settings_are_named_so(tmp_path):
    """The strong-baselines row of deepcuts ALS with ``IMPLICIT_EQUIVALENT`` is called
    ``als_implicit_equivalent`` (it was ``als_default``, a name the new defaults made wrong);
    files with the old key still load."""
    import importlib.util
    import json
    from pathlib import Path

    from deepcuts.models.als import IMPLICIT_EQUIVALENT

    root = Path(__file__).parents[1]
    spec = importlib.util.spec_from_file_location("baselines", root / "benchmarks/baselines.py")
    baselines = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(baselines)
    current = baselines.load_doc(root / "docs" / "accuracy-benchmark.json")
    parts = {k: v for k, v in current.items() if k.startswith("baselines_")}
    assert parts, "docs/accuracy-benchmark.json has no baselines rows"
    for part in parts.values():
        row = part["als_implicit_equivalent"]
        assert "als_default" not in part
        assert {k: row["params"][k] for k in IMPLICIT_EQUIVALENT} == IMPLICIT_EQUIVALENT
    # a file written before the rename: the same numbers under the old key
    legacy = json.loads(json.dumps(current))
    for key in parts:
        legacy[key]["als_default"] = legacy[key].pop("als_implicit_equivalent")
    (tmp_path / "old.json").write_text(json.dumps(legacy))
    assert baselines.load_doc(tmp_path / "old.json") == current
    printed = "\n".join(baselines.lines(baselines.load_doc(tmp_path / "old.json")))
    assert "als_implicit_equivalent_over_ease_recall@20" in printed and "als_default" not in printed
    assert "als_default" not in (root / "docs" / "benchmarks.md").read_text()
    assert baselines.load_doc(tmp_path / "missing.json") == {}


def test_itemknn_default_is_the_measured_best_and_beats_popularity():
    import json
    from pathlib import Path

    measured = json.loads((Path(__file__).parents[1] / "docs" / "itemknn_default.json").read_text())
    assert ItemKNN().similarity == measured["best"]
    assert measured["ndcg@10"][measured["best"]] > measured["ndcg@10"]["popularity"]


def test_bm25_implicit_matches_implicits_bm25_weight():
    nn = pytest.importorskip("implicit.nearest_neighbours")
    from deepcuts.data.weighting import apply_weighting, bm25, bm25_implicit

    m = sp.random(40, 25, density=0.2, format="csr", random_state=3, dtype=np.float64)
    m.data = np.ceil(m.data * 20)
    for k1, b in ((100.0, 0.8), (1.2, 0.75)):
        ref = nn.bm25_weight(m, K1=k1, B=b).tocsr()
        ours = bm25_implicit(m, k1=k1, b=b)
        np.testing.assert_allclose(ours.toarray(), ref.toarray(), rtol=1e-6, atol=1e-6)
    via_name = apply_weighting(m, "bm25-implicit:k1=1.2,b=0.75")
    np.testing.assert_allclose(
        via_name.toarray(), nn.bm25_weight(m, 1.2, 0.75).toarray(), rtol=1e-6
    )
    # deepcuts' own bm25 is a different formula (documented): it must not silently match
    assert not np.allclose(bm25(m).toarray(), nn.bm25_weight(m, 1.2, 0.75).toarray())


def test_itemknn_bm25_implicit_lists_equal_implicits_bm25recommender():
    nn = pytest.importorskip("implicit.nearest_neighbours")
    from deepcuts.data import load_lastfm2k

    x = load_lastfm2k()
    m = x.matrix.astype(np.float32)
    imp = nn.BM25Recommender(K=21, K1=1.2, B=0.75, num_threads=1)  # implicit counts the item
    imp.fit(m, show_progress=False)
    ours = ItemKNN(k=20, similarity="bm25-implicit").fit(x)
    users = np.arange(0, x.n_users, 20)
    theirs, _ = imp.recommend(users, m[users], N=10)
    mine = ours.recommend(x.user_map.ids[users], n=10).index_matrix(10)
    same = np.mean([set(a) == set(b) for a, b in zip(theirs, mine)])
    assert same >= 0.98


# ---------------------------------------------------------------- 4. compilation
def test_service_warms_every_request_path_before_it_reports_ready(tmp_path, monkeypatch):
    pytest.importorskip("sqlalchemy")
    from serving_helpers import planted_frames

    from deepcuts.serving import _warmup
    from deepcuts.serving.service import RecommenderService
    from deepcuts.serving.store import Store, default_url

    calls = []
    real = ALS.rank_index

    def spy(self, user_index, user_items, n, **kw):
        calls.append((int(np.asarray(user_index)[0]), tuple(map(repr, kw.get("rerankers", ())))))
        return real(self, user_index, user_items, n, **kw)

    monkeypatch.setattr(ALS, "rank_index", spy)
    store = Store(default_url(tmp_path))
    store.import_play_counts(*planted_frames())
    svc = RecommenderService(store, tmp_path, model="als", seed=False,
                             model_params={"factors": 4, "iterations": 2, "random_state": 0})  # fmt: skip
    assert svc.health()["ready"] is False
    svc.start()
    health = svc.health()
    assert health["ready"] is True and health["warm_s"] >= 0
    assert any(u == -1 for u, _ in calls)  # the fold-in path of a history
    knobs = " ".join(r for _, rr in calls for r in rr)
    for name in ("DepthKnob", "RarityKnob", "ObscurityBand", "MMR"):
        assert name in knobs
    assert _warmup.warm_up(svc.handle) < 5.0  # warm now: no compilation left


def test_serve_says_on_the_terminal_when_the_kernels_are_warm(tmp_path, monkeypatch, capsys):
    """``deepcuts serve`` prints that it compiles, then "kernels warm (x s); ready" once the
    warm-up has run and before it listens (uvicorn stubbed out)."""
    pytest.importorskip("uvicorn")
    pytest.importorskip("sqlalchemy")
    import gc
    import re

    import threadpoolctl
    import uvicorn
    from serving_helpers import planted_frames

    import deepcuts.serving.service as service_mod
    from deepcuts.cli import main
    from deepcuts.serving.store import Store, default_url

    store = Store(default_url(tmp_path))
    store.import_play_counts(*planted_frames())
    store.close()
    printed = []  # the terminal so far: when the warm-up ends, and when the server would listen
    real_warm = service_mod.warm_up

    def warm(handle):
        took = real_warm(handle)
        printed.append(capsys.readouterr().out)
        return took

    served = {}

    def run(app, host, port, **kw):
        printed.append(capsys.readouterr().out)
        served["health"] = app.state.service.health()
        served["options"] = kw

    monkeypatch.setattr(service_mod, "warm_up", warm)
    monkeypatch.setattr(uvicorn, "run", run)
    monkeypatch.setattr(threadpoolctl, "threadpool_limits", lambda *a, **kw: None)  # process-wide
    try:
        argv = ["serve", "--data-dir", str(tmp_path), "--no-seed", "--model", "als",
                "--param", "factors=4", "--param", "iterations=2", "--port", "8123"]  # fmt: skip
        assert main(argv) == 0
    finally:
        gc.unfreeze()  # deepcuts serve freezes the collector's generations (freeze_gc)
    before, after = printed[0], printed[-1]
    assert "compiling the request kernels" in before and "kernels warm" not in before
    warm_s = re.search(r"kernels warm \((\d+\.\d) s\); ready", after)
    assert warm_s, after
    assert served["health"]["ready"] is True
    assert float(warm_s.group(1)) == pytest.approx(served["health"]["warm_s"], abs=0.051)
    assert after.index("kernels warm") < after.index("serving model")
    assert served["options"] == {"log_level": "warning", "access_log": False}  # -v: point 11


def test_evaluate_reports_fit_time_without_compilation(monkeypatch, tmp_path, capsys):
    """The first fit of a model class pays numba's compilation; ``fit_s`` must not include it
    (simulated: the first fit in the process sleeps 1.5 s)."""
    import json
    import time

    from deepcuts.cli import _evaluate, main

    real_build = _evaluate.build_model
    first = {"done": False}

    def build(name, params, seed):
        model = real_build(name, params, seed)
        fit = model.fit

        def compiling_fit(x, **kw):
            if not first["done"]:
                first["done"] = True
                time.sleep(1.5)
            return fit(x, **kw)

        model.fit = compiling_fit
        return model

    monkeypatch.setattr(_evaluate, "build_model", build)
    out = tmp_path / "e.json"
    assert main(["evaluate", "--model", "popularity", "--k", "5", "--metrics", "ndcg",
                 "--json", str(out)]) == 0  # fmt: skip
    res = json.loads(out.read_text())["results"][0]
    assert res["warmup_s"] >= 1.5 and res["fit_s"] < 1.0
    assert "not in fit_s" in capsys.readouterr().out


# ---------------------------------------------------------------- 5. ids and names
@pytest.fixture(scope="module")
def lastfm_knn():
    from deepcuts.data import load_lastfm2k

    return ItemKNN(k=50).fit(load_lastfm2k())


def test_string_ids_find_integer_ids_and_results_carry_the_models_ids(lastfm_knn):
    a = lastfm_knn.recommend("2", n=5)
    b = lastfm_knn.recommend(2, n=5)
    assert a.items.tolist() == b.items.tolist()
    assert a.queries.tolist() == [2] * 5  # the model's id, not the query's spelling
    from deepcuts.data import IdMap

    assert IdMap(["2", "x"]).index([2]).tolist() == [0]
    with pytest.raises(DeepcutsError, match="unknown user"):
        lastfm_knn.recommend("two")
    # the one policy is written down where a new user looks
    from pathlib import Path

    root = Path(__file__).parents[1]
    assert 'recommend("2")' in (root / "README.md").read_text()
    assert "Ids (one policy for Python and HTTP)" in (root / "docs" / "data.md").read_text()


def test_recommend_history_resolves_names_and_refuses_unknown_items(lastfm_knn):
    import warnings

    from deepcuts.exceptions import UnknownIdError, UnknownItemsWarning

    x = lastfm_knn.interactions_
    by_id = {int(x.item_map.ids[np.flatnonzero(x.item_names() == n)[0]]): c
             for n, c in (("Radiohead", 10), ("Björk", 5))}  # fmt: skip
    ref = lastfm_knn.recommend_history(by_id, n=10)
    for names in ({"Radiohead": 10, "Björk": 5}, {"radiohead": 10, "BJORK": 5}):
        got = lastfm_knn.recommend_history(names, n=10)
        assert got.items.tolist() == ref.items.tolist()
        assert (got.scores > 0).all()
    with pytest.warns(UnknownItemsWarning, match="Not A Band"):
        lastfm_knn.recommend_history({"Radiohead": 10, "Not A Band": 3}, n=3)
    with pytest.raises(UnknownIdError, match="Not A Band"):
        lastfm_knn.recommend_history({"Radiohead": 10, "Not A Band": 3}, missing_items="raise")
    with pytest.raises(UnknownIdError, match="match no item"):
        lastfm_knn.recommend_history({"Not A Band": 3})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lastfm_knn.recommend_history({"Radiohead": 10, "Not A Band": 3}, missing_items="ignore")


# ---------------------------------------------------------------- 6. batches and results
def test_personas_and_explain_take_batches(blocks):
    pm = PersonaALS(factors=4, n_personas=2, iterations=2, random_state=0).fit(blocks)
    one = pm.personas("u1")
    both = pm.personas(["u1", "u2"])
    assert both.columns[0] == "user" and set(both["user"]) == {"u1", "u2"}
    pd.testing.assert_frame_equal(
        both[both.user == "u1"].drop(columns="user").reset_index(drop=True), one
    )
    als = ALS(factors=4, iterations=3, random_state=0).fit(blocks)
    ex = als.explain(["u1", "u2"], "i5", n=3)
    assert ex["user"].tolist() == ["u1"] * 3 + ["u2"] * 3
    assert (ex["target"] == "i5").all()
    assert ex.attrs["u2"]["score"] == pytest.approx(als.explain("u2", "i5").attrs["score"])
    pairs = als.explain(["u1", "u2"], ["i5", "i6"], n=2)
    assert pairs["target"].tolist() == ["i5", "i5", "i6", "i6"]
    with pytest.raises(DeepcutsError, match="one item per user"):
        als.explain(["u1", "u2"], ["i5"])


def test_recommendations_iterate_and_index(blocks):
    from deepcuts.models import Recommendation

    recs = Popularity().fit(blocks).recommend(["u0", "u1"], n=3)
    rows = list(recs)
    assert len(rows) == 6 and isinstance(rows[0], Recommendation)
    assert rows[0].query == "u0" and rows[0].rank == 1 and rows[3].query == "u1"
    assert recs[0] == rows[0] and recs[-1] == rows[-1]
    assert recs[1:3].items.tolist() == recs.items[1:3].tolist()
    assert len(recs[recs.ranks == 1]) == 2
    with pytest.raises(IndexError):
        recs[6]
    with pytest.raises(TypeError, match="for_user"):
        recs["u0"]


# ---------------------------------------------------------------- 7. honest numbers
def test_diversified_lists_report_the_models_real_scores(blocks):
    from deepcuts.rerank import build_rerankers

    m = ALS(factors=8, iterations=4, random_state=0).fit(blocks)
    users = ["u0", "u7", "u40"]
    div = m.recommend(users, n=8, rerankers=build_rerankers(diversity=0.8))
    raw = m.score_index(np.arange(m.interactions_.n_users))
    qi = m.interactions_.user_map.index(div.queries)
    np.testing.assert_allclose(div.scores, raw[qi, div.item_index], rtol=1e-6)
    plain = m.recommend(users, n=8)
    assert div.items.tolist() != plain.items.tolist()  # MMR did re-order
    # the rarity knob's re-scored values are what a rarity list reports
    rare = m.recommend(users, n=8, rerankers=build_rerankers(rarity=0.5, diversity=0.5))
    only_rarity = m.recommend(users, n=50, rerankers=build_rerankers(rarity=0.5))
    lookup = dict(zip(zip(only_rarity.queries, only_rarity.items), only_rarity.scores))
    for r in rare:
        assert r.score == pytest.approx(lookup[(r.query, r.item)], rel=1e-6)


def test_an_empty_band_warns():
    from deepcuts.data import load_lastfm2k
    from deepcuts.exceptions import EmptyListWarning
    from deepcuts.rerank import build_rerankers

    m = Popularity().fit(load_lastfm2k())
    with pytest.warns(EmptyListWarning, match=r"band 0:50 holds no item.*60\.6th.*0:61"):
        recs = m.recommend([2, 3], n=10, rerankers=build_rerankers(band="0:50"))
    assert len(recs) == 0
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(m.recommend([2], n=10, rerankers=build_rerankers(band="0:61"))) == 10


# ---------------------------------------------------------------- 8. plots
def test_sweep_plot_is_a_readable_tradeoff_figure(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    from matplotlib.image import imread

    from deepcuts.cli import main

    png = tmp_path / "knob.png"
    args = ["evaluate", "--model", "popularity", "--model", "itemknn:k=20", "--sweep",
            "rarity=1,0.9", "--k", "10", "--plot", str(png)]  # fmt: skip
    assert main(args) == 0
    img = imread(png)
    h, w = img.shape[:2]
    assert 600 <= w <= 1600 and 400 <= h <= 1400 and w / h < 2  # was 4536 x 408
    # one line per model: each model's colour appears (matplotlib's first two: blue, orange)
    rgb = (img[..., :3] * 255).astype(int)
    for colour in ((31, 119, 180), (255, 127, 14)):
        assert (np.abs(rgb - colour).sum(axis=2) < 30).sum() > 200
    assert "wrote" in capsys.readouterr().out


# ---------------------------------------------------------------- 10. histories people have
SCROBBLES_GHAN = (
    "uts,utc_time,artist,artist_mbid,album,album_mbid,track,track_mbid\n"
    "1700000000,14 Nov 2023 22:13,Artist 11,,alb,,t1,\n"
    "1700000300,14 Nov 2023 22:18,Artist 12,,alb,,t2,\n"
    "1700000600,14 Nov 2023 22:23,artist 11,,alb,,t3,\n"
)
SCROBBLES_PLAIN = "Artist 13,alb,t1,31 Jan 2021 14:03\nArtist 13,alb,t2,31 Jan 2021 14:07\n"


def _spotify_rows():
    return [
        {"ts": "2023-01-01T10:00:00Z", "ms_played": 200_000,
         "master_metadata_album_artist_name": "Artist 21", "master_metadata_track_name": "a"},
        {"ts": "2023-01-01T10:04:00Z", "ms_played": 180_000,
         "master_metadata_album_artist_name": "Artist 22", "master_metadata_track_name": "b"},
        {"ts": "2023-01-01T10:08:00Z", "ms_played": 3_000,  # skipped: under 30 s
         "master_metadata_album_artist_name": "Artist 5", "master_metadata_track_name": "c"},
        {"ts": "2023-01-01T10:09:00Z", "ms_played": 900_000,  # a podcast: no artist
         "master_metadata_album_artist_name": None, "episode_name": "talk"},
    ]  # fmt: skip


def test_readers_of_personal_exports(tmp_path):
    import json
    import zipfile

    from deepcuts.data.readers import read_interactions

    ghan = tmp_path / "scrobbles.csv"
    ghan.write_text(SCROBBLES_GHAN)
    x = read_interactions(ghan)  # recognised from its header
    assert x.to_frame().set_index("item")["count"].to_dict() == {"artist 11": 2.0, "artist 12": 1.0}
    assert x.user_map.ids.tolist() == ["me"] and x.timestamps.max() == 1_700_000_600
    plain = tmp_path / "lastfm.csv"
    plain.write_text(SCROBBLES_PLAIN)
    assert read_interactions(plain, user="ann").to_frame()["count"].tolist() == [2.0]

    rows = _spotify_rows()
    (tmp_path / "Streaming_History_Audio_2023_0.json").write_text(json.dumps(rows))
    sp_x = read_interactions(tmp_path / "Streaming_History_Audio_2023_0.json")
    assert sorted(sp_x.item_map.ids.tolist()) == ["artist 21", "artist 22"]
    zpath = tmp_path / "my_spotify_data.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr("Spotify Extended Streaming History/Streaming_History_Audio_2023_0.json",
                    json.dumps(rows))  # fmt: skip
        zf.writestr("Spotify Extended Streaming History/ReadMeFirst.pdf", "x")
    assert read_interactions(zpath, format="spotify").nnz == 2
    legacy = tmp_path / "StreamingHistory0.json"
    legacy.write_text(json.dumps([{"endTime": "2020-01-01 10:00", "artistName": "Artist 3",
                                   "trackName": "x", "msPlayed": 60_000}]))  # fmt: skip
    assert read_interactions(legacy).item_map.ids.tolist() == ["artist 3"]

    lb = [{"listened_at": 1_700_000_000 + i, "user_name": "lb",
           "track_metadata": {"artist_name": f"Artist {a}", "track_name": "t"}}
          for i, a in enumerate([1, 2, 2])]  # fmt: skip
    arr = tmp_path / "listens.json"
    arr.write_text(json.dumps(lb, indent=2))
    lbx = read_interactions(arr)  # a JSON array, detected as ListenBrainz
    assert lbx.to_frame().set_index("item")["count"].to_dict() == {"artist 1": 1.0, "artist 2": 2.0}


def test_upload_exports_merge_or_replace_and_hide_server_paths(tmp_path):
    pytest.importorskip("fastapi")
    pytest.importorskip("sqlalchemy")
    pytest.importorskip("httpx")
    import json

    from fastapi.testclient import TestClient
    from serving_helpers import planted_frames

    from deepcuts.serving.app import create_app
    from deepcuts.serving.service import RecommenderService
    from deepcuts.serving.store import Store, default_url

    store = Store(default_url(tmp_path))
    store.import_play_counts(*planted_frames())
    svc = RecommenderService(store, tmp_path, model="als", seed=False,
                             model_params={"factors": 4, "iterations": 2, "random_state": 0})  # fmt: skip
    svc.start()
    with TestClient(create_app(svc)) as c:

        def up(name, payload, fmt, mode=None):
            data = {"format": fmt} | ({"mode": mode} if mode else {})
            return c.post("/users/fan/history", files={"file": (name, payload)}, data=data)

        r = up("scrobbles.csv", SCROBBLES_GHAN.encode(), "lastfm-scrobbles")
        assert r.status_code == 201, r.text
        assert store.history("fan") == {"artist 11": 2.0, "artist 12": 1.0}
        r = up("s.json", json.dumps(_spotify_rows()).encode(), "spotify")
        assert r.status_code == 409 and "mode=merge" in r.json()["error"]
        r = up("s.json", json.dumps(_spotify_rows()).encode(), "spotify", "merge")
        assert r.status_code == 201 and r.json()["mode"] == "merge"
        assert store.history("fan") == {"artist 11": 2.0, "artist 12": 1.0,
                                        "artist 21": 1.0, "artist 22": 1.0}  # fmt: skip
        r = up("plain.csv", SCROBBLES_PLAIN.encode(), "lastfm-scrobbles", "replace")
        assert r.status_code == 201
        assert store.history("fan") == {"artist 13": 2.0}
        assert c.get("/users/fan/recommendations").status_code == 200
        r = up("my listens.json", b'[{"listened_at": 1}]', "listenbrainz", "replace")
        err = r.json()["error"]
        assert r.status_code == 400 and "my listens.json" in err
        assert "deepcuts-upload" not in err and "/tmp" not in err and str(tmp_path) not in err


# ---------------------------------------------------------------- 11. command line
def test_ingest_recognises_the_official_lastfm1k_file_name(tmp_path, capsys):
    from deepcuts.cli import main
    from deepcuts.data.readers import LASTFM1K_FILE

    f = tmp_path / LASTFM1K_FILE
    f.write_text("user_000001\t2009-05-04T23:08:57Z\tf1b1cf71\tDeep Dish\t\tFuck Me Im Famous\n"
                 "user_000002\t2009-05-04T13:54:10Z\t\tBjörk\t\tJoga\n")  # fmt: skip
    assert main(["ingest", str(f), "-o", str(tmp_path / "lfm")]) == 0
    assert "(lastfm1k): 2 users x 2 items" in capsys.readouterr().out


def test_model_file_names_a_saved_model_and_the_old_spelling_is_deprecated(tmp_path, capsys):
    from deepcuts.cli import main

    assert main(["train", "--model", "popularity", "-o", str(tmp_path / "pop")]) == 0
    capsys.readouterr()
    assert main(["recommend", "--model-file", str(tmp_path / "pop"), "--user", "2", "-n", "2"]) == 0
    new = capsys.readouterr()
    assert "deprecated" not in new.err
    assert main(["recommend", "--model", str(tmp_path / "pop"), "--user", "2", "-n", "2"]) == 0
    old = capsys.readouterr()
    assert old.out == new.out and "--model PATH is deprecated here; use --model-file" in old.err


def test_evaluating_few_users_warns(tmp_path, capsys):
    from deepcuts.cli import main

    df = pd.DataFrame({"user": np.repeat(["a", "b"], 6), "item": [f"i{k}" for k in range(12)]})
    df["item"] = np.r_[np.arange(6), np.arange(6)].astype(str)
    x = Interactions.from_frame(df, count_col=None)
    x.save(tmp_path / "two")
    assert main(["evaluate", "--data", str(tmp_path / "two"), "--model", "popularity",
                 "--k", "2", "--metrics", "ndcg"]) == 0  # fmt: skip
    assert "only 2 test user(s)" in capsys.readouterr().err
    assert main(["evaluate", "--model", "popularity", "--k", "2", "--metrics", "ndcg"]) == 0
    assert "test user(s)" not in capsys.readouterr().err


def test_serve_has_an_access_log_with_verbose():
    from deepcuts.cli import build_parser
    from deepcuts.cli._serve import _log_options

    quiet = _log_options(build_parser().parse_args(["serve"]))
    assert quiet == {"log_level": "warning", "access_log": False}
    for argv in (["-v", "serve"], ["serve", "-v"]):
        opts = _log_options(build_parser().parse_args(argv))
        assert opts == {"log_level": "info", "access_log": True}


# ---------------------------------------------------------------- 12. the demo
def test_demo_shows_personas_and_a_list_from_one(capsys):
    import re

    from deepcuts.cli import main

    assert main(["demo", "--users", "2", "1783", "-n", "5"]) == 0
    out = capsys.readouterr().out
    assert "Personas: a listener is a mixture of tastes" in out
    shares = [int(s) for s in re.findall(r"^  persona \d: +(\d+)% of plays", out, flags=re.M)]
    assert len(shares) >= 2 and abs(sum(shares) - 100) <= 2
    picked = re.search(r"from persona (\d) only .*\n  (.+)", out)
    assert picked and len(picked.group(2).split(", ")) == 5
    assert main(["demo", "--users", "2", "-n", "3", "--no-personas"]) == 0
    assert "Personas" not in capsys.readouterr().out


# ---------------------------------------------------------------- 13. lean install
def test_missing_extras_are_named(monkeypatch, tmp_path):
    import sys

    import deepcuts.evaluation.plots as plots
    from deepcuts.data.readers import read_table

    table = pd.DataFrame({"model": ["a", "a"], "ndcg@10": [0.1, 0.2], "novelty@10": [1.0, 2.0]})
    (tmp_path / "t.parquet").write_bytes(b"PAR1 not really")
    for mod in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg",
                "pyarrow", "pyarrow.parquet", "pyarrow.csv", "psycopg"):  # fmt: skip
        monkeypatch.setitem(sys.modules, mod, None)  # "not installed"
    with pytest.raises(DeepcutsError, match=r"'plot' extra: pip install 'deepcuts\[plot\]'"):
        plots.plot_tradeoffs(table, "ndcg@10", ["novelty@10"], tmp_path / "p.png")
    with pytest.raises(DeepcutsError, match=r"'parquet' extra"):
        read_table(tmp_path / "t.parquet", columns="user=u,item=i")
    pytest.importorskip("sqlalchemy")
    from deepcuts.serving.store import Store

    with pytest.raises(DeepcutsError, match=r"'postgres' extra"):
        Store("postgresql+psycopg://u:p@127.0.0.1:1/db", upgrade=False)


def test_base_dependencies_leave_out_the_few_feature_packages():
    import tomllib
    from pathlib import Path

    meta = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
    base = " ".join(meta["dependencies"])
    for pkg in ("pyarrow", "matplotlib", "psycopg", "playwright"):
        assert pkg not in base
    extras = meta["optional-dependencies"]
    assert "psycopg" not in " ".join(extras["serve"])
    assert "playwright" not in " ".join(extras["dev"])
    assert {"parquet", "plot", "postgres", "browser"} <= set(extras)


# ---------------------------------------------------------------- 14. layering
# (the import rules of every layer, import cycles and the exports of serving/service.py after
# its split: tests/test_layers.py)
def _imports(path) -> set[str]:
    import ast

    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def test_layering_no_preprocessing_weighting_cycle_and_atomic_writes_in_fileio():
    from pathlib import Path

    src = Path(__file__).parents[1] / "src" / "deepcuts"
    assert not any(m.startswith("deepcuts.data.weighting")
                   for m in _imports(src / "data" / "preprocessing.py"))  # fmt: skip
    for f in src.rglob("*.py"):
        mods = _imports(f)
        rel = f.relative_to(src).as_posix()
        if not rel.startswith("models/"):
            assert "deepcuts.models._io" not in mods, f"{rel} reaches into models/_io.py"
        if rel.startswith("data/"):  # lower layers never import higher ones
            assert not any(m.startswith(("deepcuts.models", "deepcuts.rerank",
                                         "deepcuts.evaluation", "deepcuts.serving"))
                           for m in mods), rel  # fmt: skip
    from deepcuts.data.weighting import WEIGHTINGS, radio_penalty

    assert WEIGHTINGS["radio"] is radio_penalty


# ---------------------------------------------------------------- 15. small correctness points
def test_mrr_and_hit_rate_hand_computed():
    from deepcuts.evaluation import evaluate
    from deepcuts.evaluation.metrics import hit_rate_at_k, mrr_at_k

    # user 0: relevant {1, 3, 5, 7} (more relevant items than k=3), first hit at rank 2
    # user 1: relevant {0}, not in the top 3; user 2: first hit at rank 1; user 3: no test items
    test = sp.csr_matrix(np.array([[0, 1, 0, 1, 0, 1, 0, 1],
                                   [1, 0, 0, 0, 0, 0, 0, 0],
                                   [0, 0, 1, 0, 0, 0, 0, 0],
                                   [0, 0, 0, 0, 0, 0, 0, 0]], np.float32))  # fmt: skip
    rec = np.array([[2, 3, 5, 1], [4, 5, 6, 0], [2, 1, -1, -1], [0, 1, 2, 3]])
    np.testing.assert_allclose(mrr_at_k(rec, test, 3), [0.5, 0.0, 1.0, np.nan])
    np.testing.assert_allclose(hit_rate_at_k(rec, test, 3), [1.0, 0.0, 1.0, np.nan])
    np.testing.assert_allclose(mrr_at_k(rec, test, 4), [0.5, 0.25, 1.0, np.nan])
    # through evaluate: the means skip users without test items
    x = planted_blocks(60, 30, 3, random_state=0)
    from deepcuts.evaluation import split

    train, held = split(x, "user-holdout", test_fraction=0.3, random_state=0)
    _, means = evaluate(Popularity(), train, held, k=5, metrics=["mrr", "hit_rate", "recall"])
    assert 0 <= means["mrr@5"] <= means["hit_rate@5"] <= 1


def test_user_holdout_rounds_half_up_exactly():
    from deepcuts.evaluation import user_holdout_split

    df = pd.DataFrame({"user": ["u"] * 90, "item": np.arange(90), "count": 1.0})
    _, test = user_holdout_split(Interactions.from_frame(df), test_fraction=0.35)
    assert test.nnz == 32  # 0.35 * 90 = 31.5 -> 32 (floating point gave 31)


def test_one_item_list_has_zero_diversity():
    from deepcuts.evaluation.metrics import intra_list_diversity

    v = np.array([[1.0, 0.0], [0.0, 1.0]])
    got = intra_list_diversity(np.array([[1, -1], [-1, -1], [0, 1]]), item_vectors=v)
    assert got[0] == 0.0 and np.isnan(got[1]) and got[2] == 1.0
    m = sp.csr_matrix(np.eye(2))
    assert intra_list_diversity(np.array([[0, -1]]), matrix=m)[0] == 0.0  # the sparse kernel too


def test_artists_with_different_musicbrainz_ids_stay_apart(tmp_path):
    from deepcuts.data.readers import read_lastfm1k

    f = tmp_path / "l.tsv"
    f.write_text(
        "u1\t2009-05-01T10:00:00Z\t0f6e1c1e-aaaa\tThe Young Lovers\t\ts1\n"
        "u1\t2009-05-01T10:01:00Z\t7d1b3e2f-bbbb\tYoung Lovers\t\ts2\n"
        "u2\t2009-05-01T10:02:00Z\t7d1b3e2f-bbbb\tYoung Lovers\t\ts3\n"
        "u2\t2009-05-01T10:03:00Z\t\tthe beatles\t\ts4\n"
        "u2\t2009-05-01T10:04:00Z\t\tBeatles, The\t\ts5\n"
    )
    x = read_lastfm1k(f)
    names = dict(zip(x.items["item"], x.items["name"]))
    assert names["young lovers"] == "The Young Lovers"
    assert names["young lovers [7d1b3e2f]"] == "Young Lovers"
    assert x.to_frame().set_index(["user", "item"])["count"].to_dict() == {
        ("u1", "young lovers"): 1.0,
        ("u1", "young lovers [7d1b3e2f]"): 1.0,
        ("u2", "young lovers [7d1b3e2f]"): 1.0,
        ("u2", "beatles"): 2.0,
    }  # fmt: skip  (without MBIDs, names still fold together)


def test_itemknn_bm25_docs_no_longer_claim_implicits_formula():
    doc = ItemKNN.__doc__
    bm25_part = doc[doc.index('``"bm25"``: the same') :]
    assert "not* implicit's formula" in bm25_part.split('``"cosine"``')[0]
