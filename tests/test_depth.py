"""The depth knob (issue 11): evidence floor, calibration, prefix quota, "mine", CLI."""

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deepcuts.cli import main
from deepcuts.data import Interactions, generate_listening, load_lastfm2k
from deepcuts.exceptions import DeepcutsError
from deepcuts.models import ALS
from deepcuts.models._topk import topk_rows
from deepcuts.rerank import DepthKnob, build_rerankers, depth_catalogue, depth_targets
from deepcuts.rerank import _depth_kernels as K
from deepcuts.rerank.depth import (
    DEEP_MODES,
    history_percentile,
    history_tail_share,
    item_content,
    item_evidence,
    parse_depth,
    tail_level,
    taste_listeners,
    taste_similarity,
)


def _interactions(listeners):
    """Item i played by listeners[i] distinct users (users 0..)."""
    rows = [(u, i) for i, k in enumerate(listeners) for u in range(k)]
    return Interactions.from_frame(pd.DataFrame(rows, columns=["user", "item"]).assign(count=1))


def _ctx(x, n, user_items=None):
    return SimpleNamespace(model=SimpleNamespace(interactions_=x), n=n, user_items=user_items)


# ---------------------------------------------------------------------------- kernel


@pytest.mark.parametrize("b", [3, 20])  # serial and parallel kernels
def test_kernel_equals_reference(b):
    rng = np.random.default_rng(b)
    n_items, m = 300, 12
    scores = rng.normal(size=(b, n_items)).astype(np.float32)
    scores[rng.random((b, n_items)) < 0.2] = -np.inf
    scores[0, :5] = 1.0  # ties: lower index first
    eligible = rng.random(n_items) < 0.8
    pct = rng.uniform(0, 100, n_items).astype(np.float32)
    weight = rng.uniform(0.2, 1, n_items).astype(np.float32)
    target = rng.uniform(5, 95, b)
    share = rng.choice([0.0, 0.5, 0.73, 1.0], b)
    got = K.depth_rows(scores, eligible, pct, weight, target, share, m)
    want = K.depth_rows_reference(scores, eligible, pct, weight, target, share, m)
    np.testing.assert_array_equal(np.isfinite(got), np.isfinite(want))
    np.testing.assert_allclose(got[np.isfinite(got)], want[np.isfinite(want)], rtol=1e-6)
    np.testing.assert_array_equal(topk_rows(got, m)[0], topk_rows(want, m)[0])


def test_hand_computed_list():
    # listeners: 50, 20, 10, 5, 4, 3, 1 -> item 6 is below the floor
    x = _interactions([50, 20, 10, 5, 4, 3, 1])
    cat = depth_catalogue(x, 3)
    assert cat.eligible.tolist() == [True] * 6 + [False]
    lp = np.log([50, 20, 10, 5, 4, 3])
    assert cat.mu == pytest.approx(lp.mean()) and cat.sigma == pytest.approx(lp.std())
    from scipy.stats import norm

    def F(v):  # the fitted CDF conditioned on clearing the floor (bin edge 2.5)
        b = norm.cdf((np.log(2.5) - lp.mean()) / lp.std())
        return (norm.cdf((v - lp.mean()) / lp.std()) - b) / (1 - b)

    n = np.array([50, 20, 10, 5, 4, 3])
    u = np.random.default_rng(0).random(7)[:6]  # each item's fixed place in its bin
    lo, hi = F(np.log(n - 0.5)), F(np.log(n + 0.5))
    np.testing.assert_allclose(cat.percentile[:6], 100 * (lo + u * (hi - lo)), rtol=1e-5)
    assert cat.percentile[6] == 0 and cat.floor_top == pytest.approx(100 * F(np.log(3.5)))
    s = np.array([[6.0, 5.0, 4.0, 3.0, 2.0, 1.0, 9.0]], np.float32)
    # depth 0.5: target percentile 50 (items 2-5 lie at or below it), share 0.75:
    # position 0 takes the best match, positions 1-3 are deep slots
    assert (cat.percentile[2:6] <= 50).all() and (cat.percentile[:2] > 50).all()
    out = DepthKnob(0.5, shrinkage=0, deep="calibrated").rerank(s, _ctx(x, 4))
    assert np.argsort(-out[0], kind="stable")[:4].tolist() == [0, 2, 3, 4]
    assert out[0, 6] == -np.inf  # one listener: ineligible
    # the rest keep their (unshrunk) scores below the picks
    assert out[0, 1] == 5.0 and out[0, 5] == 1.0 and out[0, 0] > out[0, 2] > out[0, 4] > 6.0


def test_shrinkage_pulls_thin_items_toward_the_user_mean():
    x = _interactions([40, 1, 30])
    s = np.array([[1.0, 3.0, 2.6]], np.float32)
    prior = 2.2  # mean eligible score
    out = DepthKnob(0.0001, floor=1, shrinkage=0.1, deep="calibrated").rerank(s, _ctx(x, 1))
    # item 1 has one listener: weight 1 / 1.1; item 2: 30 / 30.1; the first slot is the best
    assert out[0, 2] == pytest.approx(prior + 30 / 30.1 * (2.6 - prior), rel=1e-6)
    assert np.argsort(-out[0]).tolist() == [1, 2, 0]
    # a stronger shrinkage (k = 3): 2.2 + 0.25 * 0.8 = 2.4 < 2.2 + 30 / 33 * 0.4 = 2.56
    out = DepthKnob(0.0001, floor=1, shrinkage=3.0, deep="calibrated").rerank(s, _ctx(x, 1))
    assert np.argsort(-out[0]).tolist() == [2, 1, 0]


def test_depth_zero_is_the_neutral_ranking_exactly():
    d = generate_listening(300, 800, random_state=1)
    model = ALS(factors=8, iterations=3, random_state=0).fit(d.interactions)
    users = d.interactions.user_map.external(np.arange(40))
    base = model.recommend(users, n=10)
    for rr in ([DepthKnob(0)], build_rerankers(depth=0.0), build_rerankers(depth="0")):
        got = model.recommend(users, n=10, rerankers=rr)
        assert got.items.tolist() == base.items.tolist()
        np.testing.assert_array_equal(got.scores, base.scores)


@pytest.fixture(scope="module")
def fitted():
    d = generate_listening(600, 3000, random_state=2)
    x = d.interactions
    model = ALS(factors=16, iterations=5, random_state=0).fit(x)
    return model, x


def test_floor_is_honoured_and_can_be_lowered(fitted):
    model, x = fitted
    pop = x.item_popularity()
    users = x.user_map.external(np.arange(100))
    for depth in (0.3, 1.0, "mine+0.2"):
        recs = model.recommend(users, n=20, rerankers=[DepthKnob(depth)])
        assert (pop[recs.item_index] >= 3).all()
    low = model.recommend(users, n=20, rerankers=[DepthKnob(1.0, floor=1, shrinkage=0)])
    assert (pop[low.item_index] < 3).any()  # thinner items come back when asked for
    high = model.recommend(users, n=20, rerankers=[DepthKnob(1.0, floor=10)])
    assert (pop[high.item_index] >= 10).all()


def _median_pct(model, x, depth, users):
    cat = depth_catalogue(x, 3)
    recs = model.recommend(users, n=10, rerankers=[DepthKnob(depth, deep="calibrated")])
    df = pd.DataFrame({"u": recs.queries, "p": cat.percentile[recs.item_index]})
    return df.groupby("u")["p"].median().mean()


def test_calibrated_on_two_popularity_distributions():
    # a flat and a steep long tail: the same depth gives the same list median percentile
    depths = np.array([0.2, 0.4, 0.6, 0.8])
    lists = {}
    for zipf in (1.0, 1.6):
        x = generate_listening(600, 3000, item_zipf=zipf, random_state=3).interactions
        model = ALS(factors=16, iterations=5, random_state=0).fit(x)
        users = x.user_map.external(np.arange(200))
        lists[zipf] = np.array([_median_pct(model, x, d, users) for d in depths])
    a, b = lists[1.0], lists[1.6]
    assert np.abs(a - b).max() <= 5, (a, b)
    # the median lies at or below the target percentile 100 (1 - d)
    assert (a <= 100 * (1 - depths)).all() and (b <= 100 * (1 - depths)).all(), (a, b)


@pytest.fixture(scope="module")
def block(fitted):
    model, x = fitted
    users = np.arange(0, 600, 3, dtype=np.int32)

    class Capture:
        def rerank(self, scores, ctx):
            self.scores, self.ctx = scores.copy(), ctx
            return scores

    cap = Capture()
    model.rank_index(users, x.matrix[users], 10, rerankers=[cap])
    return SimpleNamespace(scores=cap.scores, ctx=cap.ctx, cat=depth_catalogue(x, 3))


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(d1=st.floats(0.0, 0.95), step=st.floats(0.01, 1.0), deep=st.sampled_from(DEEP_MODES))
def test_deeper_never_raises_list_median_popularity_on_average(block, d1, step, deep):
    # calibrated: from depth 0 on; the long-tail arrangements: once the floor applies (d > 0;
    # the floor alone removes thin, i.e. unpopular, items from the neutral list)
    d1 = d1 if deep == "calibrated" else max(d1, 0.01)
    d2 = min(d1 + step, 1.0)

    def median(d):
        idx, _ = topk_rows(DepthKnob(d, deep=deep).rerank(block.scores, block.ctx), 10)
        assert (idx >= 0).all()
        return np.median(block.cat.percentile[idx], axis=1).mean()

    assert median(d2) <= median(d1) + 1e-6


# ---------------------------------------------------------------------------- "mine"


def test_mine_follows_the_listeners_own_history():
    x = _interactions([50, 20, 10, 5, 4, 3])
    cat = depth_catalogue(x, 3)
    hist = sp.csr_matrix(np.array([[1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1], [0] * 6]))
    med = history_percentile(hist, cat)
    assert med[0] == pytest.approx(cat.percentile[1]) and med[1] == pytest.approx(cat.percentile[4])
    assert med[2] == 100.0  # no history: neutral
    d = DepthKnob("mine", deep="calibrated").row_depths(_ctx(x, 3, hist), 3)
    np.testing.assert_allclose(d, [1 - med[0] / 100, 1 - med[1] / 100, 0.0])
    d2 = DepthKnob("mine+0.2", deep="calibrated").row_depths(_ctx(x, 3, hist), 3)
    np.testing.assert_allclose(d2, np.clip(d + 0.2, 0, 1))
    # the list of a mainstream listener stays shallower than a deep listener's
    s = np.tile(np.array([6.0, 5.0, 4.0, 3.0, 2.0, 1.0], np.float32), (2, 1))
    out = DepthKnob("mine", deep="calibrated").rerank(s, _ctx(x, 3, hist[:2]))
    top = np.argsort(-out, axis=1)[:, :3]
    assert cat.percentile[top[0]].mean() > cat.percentile[top[1]].mean()


def test_targets_and_parsing():
    t, p = depth_targets([0.0, 0.5, 1.0])
    assert t.tolist() == [100.0, 50.0, 0.0] and p.tolist() == [0.0, 0.75, 1.0]
    assert parse_depth("mine-0.3") == ("mine", -0.3)
    assert parse_depth(" MINE + 0.1 ") == ("mine", 0.1)
    for bad in (-0.1, 1.5, "deep", "", None, True, float("nan"), "mine*2"):
        with pytest.raises(DeepcutsError, match="depth must be"):
            DepthKnob(bad)
    with pytest.raises(DeepcutsError, match="after 'mine'"):
        DepthKnob("mine+2")
    for bad in (0, -1, 2.5, "3", True):
        with pytest.raises(DeepcutsError, match="floor must be an integer"):
            DepthKnob(0.5, floor=bad)
    with pytest.raises(DeepcutsError, match="shrinkage"):
        DepthKnob(0.5, shrinkage=-1)
    with pytest.raises(DeepcutsError, match="give depth too"):
        build_rerankers(floor=2)
    assert repr(build_rerankers(depth="mine+0.2", floor=2)[0]) == (
        "DepthKnob(depth='mine+0.2', floor=2, shrinkage=1)"
    )


# ---------------------------------------------------------------------------- CLI


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    out = tmp_path_factory.mktemp("depth") / "als"
    argv = ["train", "--model", "als", "--param", "factors=16", "iterations=3", "-o", str(out)]
    assert main(argv) == 0
    return out


def test_cli_recommend_depth(saved, capsys):
    from deepcuts.data import load_lastfm2k

    pop = dict(zip(load_lastfm2k().item_map.ids.tolist(), load_lastfm2k().item_popularity()))
    argv = ["recommend", "--model-file", str(saved), "--user", "2", "-n", "10", "--format", "json"]

    def items(*knobs):
        assert main([*argv, *knobs]) == 0
        return [r["item"] for r in json.loads(capsys.readouterr().out)[0]["items"]]

    base, deep = items(), items("--depth", "0.8")
    assert items("--depth", "0") == base and len(deep) == 10
    assert np.median([pop[i] for i in deep]) < np.median([pop[i] for i in base])
    assert all(pop[i] >= 5 for i in items("--depth", "1", "--floor", "5"))
    assert len(items("--depth", "mine+0.2")) == 10


@pytest.mark.parametrize(
    "knobs, message",
    [
        (["--depth", "1.5"], "--depth must be a number in [0, 1]"),
        (["--depth", "lots"], "--depth must be a number in [0, 1]"),
        (["--depth", "0.5", "--floor", "0"], "--floor must be an integer >= 1"),
        (["--floor", "2"], "give depth too"),
    ],
)
def test_cli_rejects_bad_depth(saved, capsys, knobs, message):
    argv = ["recommend", "--model-file", str(saved), "--user", "2", *knobs]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_depth_per_persona():
    # a persona model ranks one persona's list; the depth knob re-ranks that list (issue 12)
    from deepcuts.models import PersonaALS

    d = generate_listening(300, 1500, random_state=4)
    x = d.interactions
    model = PersonaALS(factors=8, n_personas=2, iterations=3, random_state=0).fit(x)
    users = x.user_map.external(np.arange(30))
    pop = x.item_popularity()
    for p in (0, 1):
        plain = model.recommend(users, n=10, persona=p)
        deep = model.recommend(users, n=10, persona=p, rerankers=[DepthKnob(0.8, shrinkage=0)])
        assert (pop[deep.item_index] >= 3).all()
        assert np.median(pop[deep.item_index]) < np.median(pop[plain.item_index])
        # the first item of each list is the persona's own best eligible match
        ranked = model.recommend(users, n=50, persona=p).to_frame()
        ranked = ranked[pop[x.item_map.index(ranked["item"].to_numpy())] >= 3]
        best = ranked.groupby("user").head(1).set_index("user")["item"]
        first = deep.to_frame().groupby("user").head(1).set_index("user")["item"]
        assert (first == best.loc[first.index]).all()


# ---------------------------------------------------------------------------- deep="tail"


def _tail_mask(pop, head_share=0.2):
    """The long tail as the evaluation defines it (items outside the 20% most listened)."""
    cut = np.sort(pop)[::-1][int(np.ceil(head_share * len(pop))) - 1]
    return pop <= cut


def test_tail_level_matches_the_long_tail_cut(fitted):
    _, x = fitted
    cat = depth_catalogue(x, 3)
    lt = _tail_mask(cat.listeners)
    level = tail_level(cat)
    deep = cat.eligible & (cat.percentile <= level)
    np.testing.assert_array_equal(deep, cat.eligible & lt)


@pytest.mark.parametrize("d", [0.1, 0.3, 0.5, 1.0])
def test_tail_share_follows_depth(block, d):
    # a share d of the n = 10 positions after the first holds long-tail items; none thin
    knob = DepthKnob(d, deep="tail")
    idx, _ = topk_rows(knob.rerank(block.scores, block.ctx), 10)
    pop = block.cat.listeners
    lt = _tail_mask(pop)[idx]
    slots = K.deep_slots(d, 10)
    assert (pop[idx] >= 3).all()
    assert lt[:, slots].all()  # every deep slot got a long-tail item (plenty exist)
    assert lt.mean() >= slots.mean()
    # the kernel gets share d and the tail level as target: same as calling it directly
    w = knob.weights(block.ctx.model.interactions_)
    b = block.scores.shape[0]
    ref = K.depth_rows_reference(block.scores[:5], block.cat.eligible, block.cat.percentile, w,
                                 np.full(5, tail_level(block.cat)), np.full(5, d), 10)  # fmt: skip
    np.testing.assert_array_equal(knob.rerank(block.scores, block.ctx)[:5], ref)
    assert b > 5


def test_every_depth_step_changes_the_deep_slot_count_where_the_list_allows():
    # tail-first / tail: share d of the positions after the first, which stays the best match
    for n in (10, 20):
        counts = [int(K.deep_slots(k / 10, n).sum()) for k in range(11)]
        assert counts == [min(int(np.floor(k * n / 10 + 1e-9)), n - 1) for k in range(11)]
        assert not K.deep_slots(1.0, n)[0]  # position 1 is never a deep slot
        # 10 non-zero steps over n - 1 positions: all distinct when n - 1 >= 10 ...
        distinct = len(set(counts[1:]))
        assert distinct == min(10, n - 1)
    # ... for n = 10, 0.9 and 1.0 share the count (all 9 positions after the first)
    assert K.deep_slots(0.9, 10).sum() == K.deep_slots(1.0, 10).sum() == 9


def test_tail_share_zero_is_neutral_and_shallow_settings_change_few_positions(block):
    base = topk_rows(block.scores, 10)[0]
    np.testing.assert_array_equal(
        DepthKnob(0.0, deep="tail").rerank(block.scores, block.ctx), block.scores
    )
    shallow = topk_rows(DepthKnob(0.1, deep="tail").rerank(block.scores, block.ctx), 10)[0]
    calibrated = topk_rows(DepthKnob(0.1, deep="calibrated").rerank(block.scores, block.ctx), 10)[0]
    same = lambda a: np.mean([len(set(r) & set(s)) for r, s in zip(a, base)])  # noqa: E731
    assert same(shallow) >= 8.5 > same(calibrated)


def test_tail_share_mine_uses_the_history_tail_share():
    x = _interactions([50, 40, 30, 20, 10] + [3] * 20)
    cat = depth_catalogue(x, 3)
    hist = sp.csr_matrix(np.array([[1, 1, 0, 0, 0] + [1, 1] + [0] * 18, [0] * 25]))
    share = history_tail_share(hist, cat)
    assert share[0] == pytest.approx(0.5) and share[1] == 0.0
    d = DepthKnob("mine+0.1", deep="tail").row_depths(_ctx(x, 3, hist), 2)
    np.testing.assert_allclose(d, [0.6, 0.1])
    with pytest.raises(DeepcutsError, match="deep must be one of"):
        DepthKnob(0.5, deep="rare")
    assert "deep='tail'" in repr(DepthKnob(0.5, deep="tail"))


# ---------------------------------------------------------------------------- deep="tail-first"


def _sparse_problem(rng, b, n_items, n_users):
    train = sp.random(n_users, n_items, density=0.08, format="csr", random_state=rng)
    train.data[:] = 1
    listeners = sp.csr_matrix(train.T)
    history = sp.random(b, n_items, density=0.1, format="csr", random_state=rng)
    history.data[:] = 1
    history[0] = 0  # a listener without history: evidence 0
    history.eliminate_zeros()
    for m in (train, listeners, history):
        m.sort_indices()
    return train, listeners, history


def test_taste_evidence_equals_reference():
    rng = np.random.default_rng(5)
    train, listeners, history = _sparse_problem(rng, 6, 120, 80)
    items = rng.integers(-1, 120, size=(6, 15))
    got = K.taste_evidence(items, history, listeners, train)
    want = K.taste_evidence_reference(items, history, listeners, train)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    assert (got[0] == 0).all() and (got[items < 0] == 0).all() and got.max() > 0


def _content(rng, n_items, n_tags=12):
    """Unit-length item feature rows, a fifth of the items without features."""
    c = sp.random(n_items, n_tags, density=0.3, format="csr", random_state=rng)
    c = sp.csr_matrix(c.multiply((rng.random(n_items) > 0.2)[:, None]))
    norm = np.sqrt(np.asarray(c.multiply(c).sum(axis=1)).ravel())
    c = sp.csr_matrix(sp.diags(np.where(norm > 0, 1 / np.where(norm > 0, norm, 1), 0)) @ c)
    c.eliminate_zeros()
    return c.astype(np.float32)


@pytest.mark.parametrize("b", [3, 20])  # serial and parallel kernels
@pytest.mark.parametrize(("taste", "mix"), [(0.0, 0.0), (0.3, 0.0), (1.0, 0.0), (0.5, 0.7),
                                            (1.0, 1.0), (0.0, 0.7)])  # fmt: skip
def test_tail_first_kernel_equals_reference(b, taste, mix):
    rng = np.random.default_rng(b)
    n_items, m = 150, 10
    train, listeners, history = _sparse_problem(rng, b, n_items, 90)
    scores = rng.normal(size=(b, n_items)).astype(np.float32)
    scores[rng.random((b, n_items)) < 0.2] = -np.inf
    scores[1, :5] = 1.0  # ties: lower index first
    eligible = rng.random(n_items) < 0.8
    pct = rng.uniform(0, 100, n_items).astype(np.float32)
    weight = rng.uniform(0.2, 1, n_items).astype(np.float32)
    target = rng.uniform(20, 95, b)
    share = rng.choice([0.0, 0.3, 0.73, 1.0], b)
    history.data = rng.integers(1, 50, history.nnz).astype(np.float32)  # play counts
    content = _content(rng, n_items)
    args = (scores, eligible, pct, weight, target, share, m, 30, taste, history, listeners, train)
    got = K.tail_first_rows(*args, content=content, mix=mix)
    want = K.tail_first_rows_reference(*args, content=content, mix=mix)
    np.testing.assert_array_equal(np.isfinite(got), np.isfinite(want))
    np.testing.assert_allclose(got[np.isfinite(got)], want[np.isfinite(want)], rtol=1e-6)
    np.testing.assert_array_equal(topk_rows(got, m)[0], topk_rows(want, m)[0])


def test_content_evidence_prefers_the_deep_cut_whose_tags_are_the_listeners():
    # two deep items with the same listeners-based evidence and base score: the one carrying
    # the listener's tags wins the deep slot once content counts, the other one without it
    n_items = 6
    train = sp.csr_matrix(np.ones((4, n_items), np.float32))
    listeners = sp.csr_matrix(train.T)
    history = sp.csr_matrix(np.array([[5, 2, 0, 0, 0, 0]], np.float32))
    tags = np.zeros((n_items, 3), np.float32)
    tags[[0, 1, 5], 0] = 1  # "ambient": the listener's items and deep item 5
    tags[4, 1] = 1  # deep item 4: "metal"
    content = sp.csr_matrix(tags)
    scores = np.array([[-np.inf, -np.inf, 3.0, 2.9, 1.0, 0.99]], np.float32)
    pct = np.array([90, 90, 90, 90, 10, 10], np.float32)
    common = (np.ones(n_items, bool), pct, np.ones(n_items, np.float32), np.array([20.0]),
              np.array([0.5]), 2, 4, 0.8, history, listeners, train)  # fmt: skip
    for mix, want in ((0.0, 4), (0.7, 5)):
        got = K.tail_first_rows(scores, *common, content=content, mix=mix)
        assert topk_rows(got, 2)[0][0].tolist() == [2, want]


def test_item_content_from_tags_and_knob_validation():
    x = load_lastfm2k()
    c = item_content(x)
    assert c.shape[0] == x.shape[1] and c.dtype == np.float32
    norms = np.sqrt(np.asarray(c.multiply(c).sum(axis=1)).ravel())
    tagged = np.asarray(c.getnnz(axis=1)) > 0
    np.testing.assert_allclose(norms[tagged], 1.0, rtol=1e-5)
    assert tagged.mean() > 0.5
    assert DepthKnob(0.5).content == 0.7 and "content" not in repr(DepthKnob(0.5))
    assert "content=0" in repr(DepthKnob(0.5, content=0))
    for bad in (-0.1, 1.5, "x", True):
        with pytest.raises(DeepcutsError, match="content must be a number in"):
            DepthKnob(0.5, content=bad)


def test_item_evidence_names_the_tags_the_listener_plays():
    x = load_lastfm2k()
    tags = x.items["tags"]
    history = x.matrix[2]
    mine = {str(t) for j in history.indices for t in (tags.iloc[j] if len(tags.iloc[j]) else [])}
    # an artist the listener did not play that shares a tag with the listener's artists
    item = next(
        i for i in range(x.shape[1]) if history[0, i] == 0 and set(map(str, tags.iloc[i])) & mine
    )
    got = item_evidence(x, item, history, n=3)["tags"]
    assert got and len(got) <= 3
    assert set(got) <= set(map(str, tags.iloc[item])) & mine


def test_tail_first_is_the_default_and_without_taste_equals_the_tail_share(block):
    assert DEEP_MODES[0] == "tail-first" and DepthKnob(0.5).deep == "tail-first"
    assert DepthKnob(0.5).taste == 0.5
    for d in (0.2, 0.7):
        a = DepthKnob(d, taste=0.0, shrinkage=3).rerank(block.scores, block.ctx)
        b = DepthKnob(d, deep="tail", shrinkage=3).rerank(block.scores, block.ctx)
        np.testing.assert_array_equal(topk_rows(a, 10)[0], topk_rows(b, 10)[0])


def test_taste_picks_the_deep_cut_whose_listeners_resemble_the_listener():
    # planted: listeners 0-9 share items 0-4 (the listener's taste); listeners 10-19 share
    # items 5-9. Deep cut A (item 10) is played by 3 of the first group, deep cut B (item 11)
    # by 3 of the second; the base scores prefer B slightly.
    rows = [(u, i) for u in range(10) for i in range(5)]
    rows += [(u, i) for u in range(10, 20) for i in range(5, 10)]
    rows += [(u, 10) for u in (0, 1, 2)] + [(u, 11) for u in (10, 11, 12)]
    rows += [(20, i) for i in (0, 1, 2)]  # the listener
    # 40 filler items (3 listeners each, other users): items 0-9 are the catalogue's head
    rows += [(u, i) for u in (21, 22, 23) for i in range(12, 52)]
    x = Interactions.from_frame(pd.DataFrame(rows, columns=["user", "item"]).assign(count=1))
    hist = x.matrix[20:21]
    s = np.full((1, 52), -np.inf, np.float32)
    s[0, [3, 4, 5, 6, 7, 8, 9, 10, 11]] = [9, 8.5, 8, 7.5, 7, 6.9, 6.8, 2.0, 2.1]
    s[0, 12:] = np.linspace(0.0, 1.0, 40)  # weaker deep candidates: the pool's score range
    ev = taste_similarity(x, np.array([[10, 11]]), hist)[0]
    assert ev[0] > 0.5 and ev[1] == 0  # A's listeners played the listener's items; B's did not
    ctx = _ctx(x, 2, hist)
    cat = depth_catalogue(x, 3)
    level = tail_level(cat)  # both are in the long tail, items 3-9 are not
    assert cat.percentile[[10, 11]].max() <= level < cat.percentile[3:10].min()
    pick = lambda taste: int(topk_rows(DepthKnob(0.5, taste=taste).rerank(s, ctx), 2)[0][0, 1])  # noqa: E731
    assert pick(0.0) == 11 and pick(0.3) == 10 and pick(1.0) == 10
    # "why this deep cut" reports the same evidence
    from deepcuts.rerank import item_evidence

    assert item_evidence(x, 10, hist)["similarity"] == pytest.approx(float(ev[0]), abs=1e-4)


def test_taste_listeners_are_a_seeded_sample_of_at_most_32():
    x = _interactions([60, 40, 5])
    lis = taste_listeners(x)
    assert lis.getnnz(axis=1).tolist() == [32, 32, 5]
    pop = x.matrix.tocsc()
    for i in range(3):  # a subset of the item's own listeners
        assert set(lis[i].indices) <= set(pop[:, i].indices)
    np.testing.assert_array_equal(lis.indices, taste_listeners(x, 32).indices)


def test_taste_argument_is_checked_and_reaches_the_knob():
    for bad in (-0.1, 1.5, "x", None, True, float("nan")):
        with pytest.raises(DeepcutsError, match="taste must be a number in"):
            DepthKnob(0.5, taste=bad)
    with pytest.raises(DeepcutsError, match="give depth too"):
        build_rerankers(taste=0.5)
    knob = build_rerankers(depth=0.4, taste=0.7)[0]
    assert (
        knob.taste == 0.7 and repr(knob) == "DepthKnob(depth=0.4, floor=3, shrinkage=1, taste=0.7)"
    )
    assert repr(DepthKnob(0.4, deep="calibrated")) == (
        "DepthKnob(depth=0.4, floor=3, shrinkage=1, deep='calibrated')"
    )


def test_cli_recommend_taste(saved, capsys):
    argv = ["recommend", "--model-file", str(saved), "--user", "2", "-n", "10", "--format", "json",
            "--depth", "0.6"]  # fmt: skip

    def items(*knobs):
        assert main([*argv, *knobs]) == 0
        return [r["item"] for r in json.loads(capsys.readouterr().out)[0]["items"]]

    assert len(items("--taste", "0")) == len(items("--taste", "1")) == 10
    assert main([*argv, "--taste", "2"]) == 2
    assert "taste must be a number in [0, 1]" in capsys.readouterr().err


@pytest.mark.parametrize("chunk", [1, 7, 1 << 22])
def test_sample_rows_matches_the_numpy_oracle_whatever_the_chunk(monkeypatch, chunk):
    from deepcuts.rerank import _depth_kernels as DK

    monkeypatch.setattr(DK, "SAMPLE_CHUNK", chunk)
    rng = np.random.default_rng(4)
    m = sp.random(40, 300, density=0.15, format="csr", random_state=rng, dtype=np.float32)
    m[3] = 0  # an empty row
    m.eliminate_zeros()
    for k in (1, 5, 32, 1000):
        got = DK.sample_rows(m, k, seed=11)
        ref = DK.sample_rows_reference(m, k, seed=11)
        np.testing.assert_array_equal(got.indptr, ref.indptr)
        np.testing.assert_array_equal(got.indices, ref.indices)
        assert got.getnnz(axis=1).tolist() == np.minimum(m.getnnz(axis=1), k).tolist()


def test_taste_listeners_are_the_oracles_sample_of_the_items_listeners():
    from deepcuts.rerank import _depth_kernels as DK
    from deepcuts.rerank.depth import TASTE_SEED

    x = _interactions([60, 40, 5, 33])
    ref = DK.sample_rows_reference(sp.csc_matrix(x.matrix).T.tocsr(), 32, TASTE_SEED)
    got = taste_listeners(x)
    np.testing.assert_array_equal(got.indptr, ref.indptr)
    np.testing.assert_array_equal(got.indices, ref.indices)
