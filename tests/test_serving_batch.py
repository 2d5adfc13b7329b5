"""Request batching: concurrent recommendation requests ranked together give the answers that
one-by-one requests give."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("sqlalchemy")
pytest.importorskip("httpx")

import httpx
import numpy as np
from serving_helpers import LiveServer, planted_frames, two_taste_frames

from deepcuts.exceptions import DataError, DeepcutsError, UnknownIdError
from deepcuts.models import RankContext
from deepcuts.models._topk import topk_rows_numpy
from deepcuts.serving._batch import Batcher
from deepcuts.serving.app import create_app
from deepcuts.serving.service import RecommenderService, _rerankers
from deepcuts.serving.store import Listen, Store, default_url

ALS_PARAMS = {"factors": 8, "iterations": 8, "regularization": 0.05, "reg_scaling": "none",
              "random_state": 0}  # fmt: skip
# the default persona model (post-hoc personas, issue 12) on the planted two-taste data
PERSONA_PARAMS = {
    "factors": 8,
    "iterations": 15,
    "reg_scaling": "none",
    "regularization": 0.1,
    "random_state": 0,
}


def _service(tmp_path, kind, params, frames):
    store = Store(default_url(tmp_path))
    store.import_play_counts(*frames)
    svc = RecommenderService(store, tmp_path, model=kind, model_params=params, seed=False)
    svc.start()
    return svc


@pytest.fixture(scope="module")
def als_service(tmp_path_factory):
    return _service(tmp_path_factory.mktemp("batch-als"), "als", ALS_PARAMS, planted_frames())


@pytest.fixture(scope="module")
def persona_service(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("batch-persona")
    return _service(tmp, "persona", PERSONA_PARAMS, two_taste_frames())


KNOBS = [
    {},
    {"n": 3},
    {"n": 25, "exclude_played": False},
    {"rarity": 0.5},
    {"rarity": 1.8, "n": 5},
    {"band": "0:60"},
    {"band": (20.0, 90.0), "rarity": 0.8},
    {"persona": 0},
    {"diversity": 0.5},
    {"diversity": 0.2, "rarity": 0.8, "n": 6},
    {"depth": 0.6},  # issue 11: the depth knob, fixed and relative to the listener's history
    {"depth": "mine+0.2", "n": 5},
]


def _strip(result):
    return json.loads(json.dumps(result))


@pytest.mark.parametrize("fixture", ["als_service", "persona_service"])
def test_batch_answers_equal_one_by_one_answers(fixture, request):
    svc = request.getfixturevalue(fixture)
    users = [f"u{k}" for k in range(0, 60, 3)]
    reqs = [(u, kw) for kw in KNOBS for u in users]
    reqs += [(u, {"persona": 1}) for u in users[:5]]
    batched = svc.recommend_batch(reqs)
    assert len(batched) == len(reqs)
    for (u, kw), got in zip(reqs, batched):
        try:
            want = svc.recommend(u, **kw)
        except DataError as e:  # e.g. persona=1 of a single-vector model
            assert isinstance(got, DataError) and str(got) == str(e)
            continue
        assert not isinstance(got, Exception), got
        assert [it["artist"] for it in got["items"]] == [it["artist"] for it in want["items"]]
        for a, b in zip(got["items"], want["items"]):
            assert a["score"] == pytest.approx(b["score"], rel=1e-5, abs=1e-6)
            assert {k: v for k, v in a.items() if k != "score"} == {
                k: v for k, v in b.items() if k != "score"
            }
        assert got["source"] == "model"


def test_batch_returns_errors_in_place_and_serves_other_sources(als_service, tmp_path):
    svc = als_service
    svc.add_listens([Listen("batch-newcomer", f"Artist {a}") for a in (1, 2, 4)])
    reqs = [
        ("u1", {}),
        ("nobody-at-all", {}),  # unknown user: 404 for that request only
        ("u2", {"rarity": 99.0}),  # a knob the re-ranker refuses
        ("batch-newcomer", {"n": 4}),  # folded in from the database
        ("u1", {"diversity": 0.5}),  # MMR
        ("u1", {"bogus": 1}),
    ]
    out = svc.recommend_batch(reqs)
    assert out[0]["items"] and out[0]["source"] == "model"
    assert isinstance(out[1], UnknownIdError)
    assert isinstance(out[2], DeepcutsError) and "rarity" in str(out[2])
    assert out[3]["source"] == "history" and len(out[3]["items"]) == 4
    assert out[3]["items"] == svc.recommend("batch-newcomer", n=4)["items"]
    assert out[4]["items"] == svc.recommend("u1", diversity=0.5)["items"]
    assert "bogus" in str(out[5])


def _fresh_fold_in(
    svc,
    user,
    *,
    n=10,
    exclude_played=True,
    rarity=None,
    band=None,
    diversity=None,
    persona=None,
    depth=None,
    floor=None,
):
    """Reference: the user's stored history folded into the served model now (nothing cached),
    scored with ``item_factors_ @ x_u`` and ranked like ``Recommender.rank_index``; as
    (artist, score) pairs. ``persona`` is accepted and ignored (ALS: persona 0 only)."""
    h = svc.handle
    m = h.model
    row = m.history_row(svc.store.history(user))
    scores = (m.item_factors_ @ h.fold.solve(row)[0])[None, :].astype(np.float32)
    scores[~np.isfinite(scores)] = -np.inf
    if exclude_played:
        scores[0, row.indices] = -np.inf
    rerankers = _rerankers(rarity=rarity, band=band, diversity=diversity, depth=depth, floor=floor)
    ctx = RankContext(m, np.array([-1], np.int32), row, n)
    values = scores
    for r in rerankers:
        scores = np.asarray(r.rerank(scores, ctx), np.float32)
        if not getattr(r, "reorders_only", False):  # MMR re-orders: report the real scores
            values = scores
    idx, _ = topk_rows_numpy(scores, n)
    val = np.take_along_axis(values, np.maximum(idx, 0), axis=1)
    return [(h.keys[i], float(v)) for i, v in zip(idx[0].tolist(), val[0]) if i >= 0]


def _assert_same_list(got, want):
    """``got``: a recommend answer; ``want``: its items or (artist, score) pairs."""
    assert not isinstance(got, Exception), got
    items = got["items"]
    if want and isinstance(want[0], dict):
        assert [it["artist"] for it in items] == [it["artist"] for it in want]
        for a, b in zip(items, want):
            assert {k: v for k, v in a.items() if k != "score"} == {
                k: v for k, v in b.items() if k != "score"
            }
        want = [(it["artist"], it["score"]) for it in want]
    assert [it["artist"] for it in items] == [a for a, _ in want]
    for it, (_, score) in zip(items, want):
        assert it["score"] == pytest.approx(score, rel=1e-5, abs=1e-6)


FOLDED = {  # new users (not in the training data) and the artists they listen to
    "fold-a": [1, 2, 4, 4, 4],
    "fold-b": [11, 12, 12, 17],
    "fold-c": [21, 23, 25, 25, 28],
    "fold-d": [3, 13, 24],  # a bit of every block
    "fold-e": [6, 7, 8, 9, 9, 9],  # only the less played half of block 0
}


def test_batched_folded_in_users_are_ranked_together_like_one_by_one(als_service, monkeypatch):
    import deepcuts.serving._recommend as recommend_mod

    svc = als_service
    svc.add_listens([Listen(u, f"Artist {a}") for u, arts in FOLDED.items() for a in arts])
    sizes = []
    rank_folded = recommend_mod._rank_folded

    def counting(h, vectors, *a, **kw):
        sizes.append(len(vectors))
        return rank_folded(h, vectors, *a, **kw)

    monkeypatch.setattr(recommend_mod, "_rank_folded", counting)
    folded = list(FOLDED)
    reqs = [(u, kw) for kw in KNOBS for u in folded + ["u5", "u17"]]  # mixed with model users
    reqs += [(u, {"persona": 1}) for u in folded[:2]]
    reqs += [(folded[0], {"diversity": 0.4, "n": 6})]  # knobs of its own: a group of one
    batched = svc.recommend_batch(reqs)
    assert len(batched) == len(reqs)
    # each knob set was one group of all folded-in users
    assert sorted(sizes) == [1] + [len(folded)] * len(KNOBS)
    for (u, kw), got in zip(reqs, batched):
        try:
            want = svc.recommend(u, **kw)
        except DataError as e:  # persona=1 of ALS
            assert isinstance(got, DataError) and str(got) == str(e)
            continue
        _assert_same_list(got, want["items"])
        assert got["source"] == want["source"] == ("history" if u in FOLDED else "model")
        assert got["model"] == want["model"] == svc.handle.model_id
        if u in FOLDED:
            ref = _fresh_fold_in(svc, u, **kw)
            assert ref  # every knob set leaves something to recommend
            _assert_same_list(got, ref)


def test_folded_in_vector_is_computed_once_and_dropped_by_a_new_listen(als_service, monkeypatch):
    svc = als_service
    h = svc.handle
    user = "fold-cache"
    svc.add_listens([Listen(user, f"Artist {a}") for a in (1, 2, 3, 3)])
    calls = []
    solve = h.fold.solve

    def counting(row):
        calls.append(row.nnz)
        return solve(row)

    monkeypatch.setattr(h.fold, "solve", counting)
    first = svc.recommend(user, n=8)
    assert first["source"] == "history" and len(calls) == 1
    again = svc.recommend_batch([(user, {"n": 8}), (user, {"rarity": 0.5}), (user, {"n": 3})])
    again.append(svc.recommend(user, n=8, band="0:80"))
    assert len(calls) == 1  # the vector kept with the history served all of them
    _assert_same_list(again[0], first["items"])
    # a new listen: the history and its vector are read and solved again
    svc.add_listens([Listen(user, f"Artist {a}") for a in (21, 22, 22, 24, 24, 24, 27)])
    after = svc.recommend_batch([(user, {"n": 8})])[0]
    assert calls == [3, 7]
    _assert_same_list(after, _fresh_fold_in(svc, user, n=8))
    assert [it["artist"] for it in after["items"]] != [it["artist"] for it in first["items"]]
    assert all(it["artist"] not in ("artist 21", "artist 24") for it in after["items"])
    _assert_same_list(svc.recommend(user, n=8), after["items"])


def test_folded_in_vector_follows_a_model_swap(tmp_path):
    """A user whose listens arrive while a retrain runs stays folded in under the new model;
    the vector cached against the old model is not reused."""
    store = Store(default_url(tmp_path))
    store.import_play_counts(*planted_frames())
    svc = RecommenderService(
        store, tmp_path, model="als", model_params=ALS_PARAMS, seed=False, retrain_in="thread"
    )
    svc.start()
    old = svc.handle
    user = "fold-swap"
    answers = {}
    snapshot = store.interactions

    def interactions():  # the retrain's data snapshot: taken before the user's listens
        x = snapshot()
        svc.add_listens([Listen(user, f"Artist {a}") for a in (11, 13, 13, 16, 18)])
        answers["old"] = svc.recommend_batch([(user, {"n": 8}), (user, {"rarity": 0.5})])
        assert svc.handle is old  # not swapped yet: the vector was solved for the old model
        return x

    store.interactions = interactions
    svc.retrain("als", {**ALS_PARAMS, "random_state": 1})
    assert svc.wait(120)["status"] == "done"
    new = svc.handle
    assert new is not old and user not in new.user_pos
    assert [a["source"] for a in answers["old"]] == ["history", "history"]
    got = svc.recommend_batch([(user, {"n": 8}), (user, {"rarity": 0.5})])
    for res, kw in zip(got, ({"n": 8}, {"rarity": 0.5})):
        assert res["source"] == "history" and res["model"] == new.model_id
        _assert_same_list(res, _fresh_fold_in(svc, user, **kw))
        _assert_same_list(svc.recommend(user, **kw), res["items"])
    # the new model's vector differs: a stale one would have kept the old scores
    old_scores = [it["score"] for it in answers["old"][0]["items"]]
    assert [it["score"] for it in got[0]["items"]] != pytest.approx(old_scores, rel=1e-3)


def test_batcher_coalesces_and_isolates_failures():
    calls = []

    def answer(reqs):
        calls.append(list(reqs))
        return [ValueError(f"bad {r}") if r % 5 == 0 else r * 10 for r in reqs]

    async def main():
        b = Batcher(answer, max_batch=4)
        res = await asyncio.gather(*(b.submit(i) for i in range(1, 11)), return_exceptions=True)
        return b, res

    b, res = asyncio.run(main())
    assert [len(c) for c in calls] == [4, 4, 2]  # one flush, split by max_batch
    assert b.batches == 3 and b.requests == 10
    assert [r for r in res if not isinstance(r, Exception)] == [10, 20, 30, 40, 60, 70, 80, 90]
    assert [str(r) for r in res if isinstance(r, Exception)] == ["bad 5", "bad 10"]

    def broken(reqs):
        raise RuntimeError("kernel failed")

    async def main2():
        b = Batcher(broken)
        return await asyncio.gather(b.submit(1), b.submit(2), return_exceptions=True)

    assert [str(e) for e in asyncio.run(main2())] == ["kernel failed", "kernel failed"]
    with pytest.raises(ValueError, match="max_batch"):
        Batcher(answer, max_batch=0)


def test_concurrent_http_requests_are_batched_and_correct(als_service):
    app = create_app(als_service)
    users = [f"u{k}" for k in range(60)]
    want = {u: [it["artist"] for it in als_service.recommend(u, n=7)["items"]] for u in users}
    with LiveServer(app) as srv:

        def fetch(u):
            with httpx.Client(base_url=srv.url, timeout=30) as c:
                return [
                    (u, c.get(f"/users/{u}/recommendations", params={"n": 7})) for _ in range(3)
                ]

        with ThreadPoolExecutor(30) as pool:
            results = [r for chunk in pool.map(fetch, users * 2) for r in chunk]
    assert len(results) == 360
    for u, r in results:
        assert r.status_code == 200, r.text
        assert [it["artist"] for it in r.json()["items"]] == want[u]
    b = app.state.batcher
    assert b.requests == 360
    assert b.batches < b.requests  # concurrent requests were answered together


def test_freeze_gc_keeps_models_out_of_collections_and_frees_old_ones(tmp_path):
    import gc
    import weakref

    store = Store(default_url(tmp_path))
    store.import_play_counts(*planted_frames())
    svc = RecommenderService(
        store, tmp_path, model="als", model_params=ALS_PARAMS, seed=False, freeze_gc=True
    )
    try:
        svc.start()
        assert gc.get_freeze_count() > 0
        first = weakref.ref(svc.handle.model)
        for _ in range(2):
            svc.retrain()
            assert svc.wait(120)["status"] == "done"
        assert first() is None  # an old model is not kept alive by the permanent generation
        assert svc.recommend("u3", n=3)["items"][0]["artist"] == "artist 3"
    finally:
        gc.unfreeze()


QUERIES = [
    "",
    "n=3",
    "n=200",
    "n=0",
    "n=201",
    "n=3.5",
    "n=",
    "rarity=0.5",
    "rarity=-3",
    "rarity=3.5",
    "rarity=abc",
    "rarity=1e-1",
    "band=0:60",
    "band=0%3A60",
    "band=bad",
    "band=90:10",
    "persona=0",
    "persona=1",
    "persona=-1",
    "exclude_played=false",
    "exclude_played=False",
    "exclude_played=no",
    "exclude_played=maybe",
    "n=3&n=4",
    "n=4&unknown=1",
    "diversity=0.3&n=5",
    "diversity=1.5",
    "rarity=0.8&band=10:90&n=7&exclude_played=1&persona=0",
    "depth=0.5",  # issue 11
    "depth=1",
    "depth=mine",
    "depth=0.5&floor=2",
    "depth=mine%2B0.2",
    "depth=2",
    "depth=abc",
    "depth=-0.1",
    "floor=2",
    "floor=0",
]


@pytest.mark.parametrize("user", ["u7", "fp-new", "nobody", "u%207", "a%2Fb"])
def test_fast_path_answers_like_the_full_route(als_service, user):
    from fastapi.testclient import TestClient

    if user == "fp-new":  # folded in from its stored history (kept in memory once read)
        als_service.add_listens([Listen(user, f"Artist {k}") for k in (30, 31, 33)])
    fast = TestClient(create_app(als_service))
    full = TestClient(create_app(als_service, fast_path=False))
    for q in QUERIES:
        url = f"/users/{user}/recommendations" + (f"?{q}" if q else "")
        a, b = fast.get(url), full.get(url)
        assert a.status_code == b.status_code, (url, a.text, b.text)
        assert a.json() == b.json(), url
        assert a.headers["content-type"] == b.headers["content-type"] == "application/json"
    # the fast path did answer the plain requests of a known user
    answered = fast.app.state.stats["fast_path"]
    if user == "u7":  # plain and answered with 200: "", n=3, n=200, rarity=0.5, rarity=-3,
        assert answered == 15  # band=0:60, persona=0, exclude_played=false/False,
    elif user == "fp-new":  # diversity=0.3&n=5, the rarity/band one, four depth ones; for
        assert answered == 14  # fp-new the first read the history from the database
    else:
        assert answered == 0 and full.app.state.stats["fast_path"] == 0
