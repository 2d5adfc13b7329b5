import numpy as np
import pandas as pd
import pytest

from deepcuts.evaluation import (
    evaluate,
    plot_sweep,
    plot_tradeoff,
    random_split,
    sweep,
    user_holdout_split,
)
from deepcuts.evaluation.metrics import ndcg_at_k, recall_at_k
from deepcuts.exceptions import DeepcutsError
from deepcuts.models import ItemKNN, Popularity
from deepcuts.testing import planted_blocks


@pytest.fixture(scope="module")
def split():
    return user_holdout_split(planted_blocks(90, 45, 3, random_state=0), random_state=0)


def test_per_user_matches_direct_metrics(split):
    train, test = split
    model = ItemKNN(k=10).fit(train)
    per_user, means = evaluate(model, train, test, k=(5, 10), batch_size=7)
    uidx = train.user_map.index(per_user["user"].to_numpy(dtype=object))
    idx, _, _ = model.rank_index(uidx, train.matrix[uidx], 10)
    np.testing.assert_allclose(per_user["ndcg@5"], ndcg_at_k(idx, test.matrix[uidx], 5))
    np.testing.assert_allclose(per_user["recall@10"], recall_at_k(idx, test.matrix[uidx], 10))
    assert means["recall@10"] == pytest.approx(per_user["recall@10"].mean())
    assert (per_user["n_test"] > 0).all() and len(per_user) == (test.matrix.getnnz(1) > 0).sum()
    assert list(means) == [f"{m}@{k}" for k in (5, 10) for m in
                           ("precision", "recall", "ndcg", "map", "coverage", "novelty",
                            "diversity", "gini", "arp")]  # fmt: skip


def test_personalised_beats_popularity_on_planted_data(split):
    train, test = split
    _, knn = evaluate(ItemKNN(k=10), train, test, k=10)
    _, pop = evaluate(Popularity(), train, test, k=10)
    assert knn["ndcg@10"] > pop["ndcg@10"] + 0.1
    assert knn["coverage@10"] > pop["coverage@10"]
    assert pop["gini@10"] > knn["gini@10"]


def test_test_items_are_never_training_items(split):
    train, test = split
    per_user, _ = evaluate(Popularity(), train, test, k=5, filter_played=False)
    per_user_f, _ = evaluate(Popularity(), train, test, k=5)
    # filtering played items can only help recall on a disjoint split
    assert (per_user_f["recall@5"].to_numpy() >= per_user["recall@5"].to_numpy() - 1e-12).all()


def test_users_argument_and_rerankers(split):
    train, test = split

    class Reverse:  # a re-ranker that prefers the least-scored items
        def rerank(self, scores, ctx):
            out = -scores
            out[np.isneginf(scores)] = -np.inf
            return out

    model = Popularity().fit(train)
    per_user, _ = evaluate(model, train, test, k=3, users=["u1", "u2"])
    assert per_user["user"].tolist() == ["u1", "u2"]
    _, plain = evaluate(model, train, test, k=10, metrics=["arp"])
    _, rev = evaluate(model, train, test, k=10, metrics=["arp"], rerankers=[Reverse()])
    assert rev["arp@10"] < plain["arp@10"]


def test_rejects_model_fitted_on_other_data(split):
    train, test = split
    full = planted_blocks(90, 45, 3, random_state=0)
    with pytest.raises(DeepcutsError, match="fit it on the training split"):
        evaluate(Popularity().fit(full), train, test)
    with pytest.raises(DeepcutsError, match="unknown metric"):
        evaluate(Popularity(), train, test, metrics=["auc"])
    with pytest.raises(DeepcutsError, match="k must be"):
        evaluate(Popularity(), train, test, k=0)
    other = random_split(planted_blocks(20, 10, random_state=0))[1]
    with pytest.raises(DeepcutsError, match="share user and item maps"):
        evaluate(Popularity(), train, other)


def test_sweep_and_plots(split, tmp_path):
    train, test = split
    table = sweep(ItemKNN, "k", [1, 5, 20], train, test, k=(5, 10), metrics=["ndcg", "novelty"])
    assert table["k"].tolist() == [1, 5, 20]
    assert {"fit_s", "eval_s", "ndcg@5", "novelty@10"} <= set(table.columns)
    p = plot_sweep(table, "k", ["ndcg@10", "novelty@10"], tmp_path / "s.png", title="k")
    assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table["model"] = "knn"
    q = plot_tradeoff(table, "novelty@10", "ndcg@10", tmp_path / "t.png", group="model", label="k")
    assert q.stat().st_size > 1000
    with pytest.raises(DeepcutsError, match="not in the results"):
        plot_tradeoff(table, "arp@10", "ndcg@10", tmp_path / "x.png")
    with pytest.raises(DeepcutsError, match="PNG"):
        plot_sweep(table, "k", ["ndcg@5"], tmp_path / "x.pdf")
    assert not (tmp_path / "x.png").exists() and not (tmp_path / "x.pdf").exists()


def test_plot_group_lines(tmp_path):
    t = pd.DataFrame({"k": [1, 2, 1, 2], "ndcg@10": [0.1, 0.2, 0.15, 0.1], "m": list("aabb")})
    assert plot_sweep(t, "k", None, tmp_path / "g.png", group="m").exists()
