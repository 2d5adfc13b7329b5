"""Contract tests every :class:`~deepcuts.models.Recommender` must pass.

Subclass :class:`RecommenderContract` in a test module and implement ``make_model``::

    class TestMyModel(RecommenderContract):
        def make_model(self):
            return MyModel(random_state=0)

pytest then runs every ``test_*`` method below against that model.
"""

from __future__ import annotations

import numpy as np
import pytest

from deepcuts.exceptions import DeepcutsError, NotFittedError, UnknownIdError
from deepcuts.models.base import load_model
from deepcuts.testing.synthetic import planted_blocks

__all__ = ["RecommenderContract"]


class RecommenderContract:
    """Mixin of contract tests; subclasses define ``make_model()``."""

    #: whether the model is expected to rank a user's own block first (personalised models)
    personalised: bool = True

    def make_model(self):  # pragma: no cover - provided by subclasses
        raise NotImplementedError

    @pytest.fixture(scope="class")
    def data(self):
        return planted_blocks(120, 60, 3, random_state=0)

    @pytest.fixture(scope="class")
    def fitted(self, data):
        return self.make_model().fit(data)

    def test_fit_returns_self(self, data):
        m = self.make_model()
        assert m.fit(data) is m

    def test_unfitted_raises(self):
        with pytest.raises(NotFittedError, match="call fit first"):
            self.make_model().recommend("u0")

    def test_params_roundtrip(self):
        m = self.make_model()
        assert m.clone().get_params() == m.get_params()

    def test_recommend_shapes_and_order(self, fitted):
        rec = fitted.recommend(["u0", "u1", "u2"], n=5)
        df = rec.to_frame()
        assert list(df.groupby("user", sort=False).size()) == [5, 5, 5]
        for _, g in df.groupby("user"):
            assert g["rank"].tolist() == [1, 2, 3, 4, 5]
            assert np.all(np.diff(g["score"].to_numpy()) <= 1e-6)
            assert g["item"].is_unique

    def test_filter_played(self, fitted, data):
        rec = fitted.recommend("u0", n=20).to_frame()
        played = set(data.user_items("u0")["item"])
        assert not played & set(rec["item"])
        rec2 = fitted.recommend("u0", n=60, filter_played=False).to_frame()
        assert len(rec2) == 60

    def test_n_items_when_available(self, fitted, data):
        n_played = data.matrix[0].nnz
        rec = fitted.recommend("u0", n=1000)
        assert len(rec) == data.n_items - n_played

    def test_allow_and_block_lists(self, fitted):
        allow = ["i1", "i2", "i3", "i4", "i5", "i7"]
        rec = fitted.recommend("u0", n=3, items=allow, filter_played=False).to_frame()
        assert set(rec["item"]) <= set(allow) and len(rec) == 3
        top = fitted.recommend("u0", n=1).items[0]
        rec2 = fitted.recommend("u0", n=5, exclude=[top]).to_frame()
        assert top not in set(rec2["item"])

    def test_batch_equals_single(self, fitted):
        batch = fitted.recommend(["u3", "u4"], n=5).to_frame()
        single = fitted.recommend("u4", n=5).to_frame()
        assert batch[batch.user == "u4"]["item"].tolist() == single["item"].tolist()

    def test_unknown_user(self, fitted):
        with pytest.raises(UnknownIdError):
            fitted.recommend("nobody")
        rec = fitted.recommend(["nobody", "u1"], n=3, missing="ignore")
        assert set(rec.queries) == {"u1"}

    def test_bad_n(self, fitted):
        with pytest.raises(DeepcutsError):
            fitted.recommend("u0", n=0)

    def test_personalised_ranking(self, fitted, data):
        if not self.personalised:
            pytest.skip("model is not personalised")
        blocks_u, blocks_i = data.meta["blocks_user"], data.meta["blocks_item"]
        hits = 0
        users = [f"u{k}" for k in range(30)]
        rec = fitted.recommend(users, n=5).to_frame()
        for u, g in rec.groupby("user"):
            hits += sum(blocks_i[i] == blocks_u[u] for i in g["item"])
        assert hits / len(rec) > 0.8

    def test_save_load_roundtrip(self, fitted, tmp_path):
        path = tmp_path / "model"
        fitted.save(path)
        assert (tmp_path / "model.npz").exists() and (tmp_path / "model.json").exists()
        loaded = load_model(path)
        a = fitted.recommend(["u0", "u5"], n=5).to_frame()
        b = loaded.recommend(["u0", "u5"], n=5).to_frame()
        assert a["item"].tolist() == b["item"].tolist()
        np.testing.assert_allclose(a["score"], b["score"], rtol=1e-5, atol=1e-6)

    def test_reproducible(self, data):
        a = self.make_model().fit(data).recommend(["u0", "u7"], n=5).to_frame()
        b = self.make_model().fit(data).recommend(["u0", "u7"], n=5).to_frame()
        assert a["item"].tolist() == b["item"].tolist()
