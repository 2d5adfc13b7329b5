"""EASE (issue 16): Steck's closed form against a NumPy reference, memory guard, fold-in,
rerankers, save/load, registry and the service."""

from __future__ import annotations

import numpy as np
import pytest

from deepcuts.exceptions import DeepcutsError
from deepcuts.models import EASE, load_model, make_model
from deepcuts.models import ease as ease_module
from deepcuts.rerank import build_rerankers
from deepcuts.testing import RecommenderContract, planted_blocks


class TestEASEContract(RecommenderContract):
    def make_model(self):
        return EASE(regularization=20.0)


def _reference(x: np.ndarray, lam: float) -> np.ndarray:
    """Steck (2019), the paper's listing, in float64 NumPy."""
    G = x.T @ x + lam * np.eye(x.shape[1])
    P = np.linalg.inv(G)
    B = P / (-np.diag(P))
    np.fill_diagonal(B, 0.0)
    return B


@pytest.mark.parametrize("lam", [1.0, 50.0])
def test_matches_numpy_reference(lam, monkeypatch):
    monkeypatch.setattr(ease_module, "_GRAM_BLOCK", 7)  # several Gramian blocks
    x = planted_blocks(90, 45, 3, random_state=1)
    m = EASE(regularization=lam).fit(x)
    ref = _reference((x.matrix.toarray() > 0).astype(np.float64), lam)
    assert m.item_weights_.dtype == np.float32 and m.item_weights_.flags.c_contiguous
    np.testing.assert_allclose(m.item_weights_, ref, atol=2e-5)
    assert np.all(np.diag(m.item_weights_) == 0)
    ui = x.matrix[:4]
    np.testing.assert_allclose(m.score_index(np.arange(4)), (ui.toarray() > 0) @ ref, atol=1e-4)


def test_fold_in_equals_the_users_row():
    x = planted_blocks(60, 30, 3, random_state=0)
    m = EASE(regularization=10.0).fit(x)
    u = x.user_map.external(np.array([5]))[0]
    row = x.matrix[5]
    history = dict(zip(x.item_map.external(row.indices), row.data))
    a = m.recommend(u, n=5)
    b = m.recommend_history(history, n=5)
    assert a.items.tolist() == b.items.tolist()
    np.testing.assert_allclose(a.scores, b.scores, rtol=1e-6)


def test_memory_guard_names_the_limit_and_the_fix():
    x = planted_blocks(60, 30, 3, random_state=0)
    assert EASE.max_items(4 * 2.5 * 20**2) == 20
    with pytest.raises(DeepcutsError, match="at most 20 items.*most popular.*RP3beta"):
        EASE(regularization=1.0, memory_limit=int(4 * 2.5 * 20**2)).fit(x)
    assert EASE.max_items() > 1000  # this machine takes a real catalogue
    with pytest.raises(DeepcutsError, match="regularization"):
        EASE(regularization=0.0).fit(x)
    with pytest.raises(DeepcutsError, match="regularization"):
        make_model("ease", regularization="-1")


def test_rerankers_save_load_and_registry(tmp_path):
    x = planted_blocks(60, 30, 3, random_state=0)
    m = make_model("ease", regularization="10").fit(x)
    knobs = build_rerankers(rarity=2.0, band=(20, 100), diversity=0.5)
    rec = m.recommend(["u0", "u1"], n=5, rerankers=knobs)
    assert len(rec) == 10 and rec.to_frame()["item"].notna().all()
    path = m.save(tmp_path / "ease")
    back = load_model(path)
    assert isinstance(back, EASE) and back.regularization == 10.0
    np.testing.assert_array_equal(back.item_weights_, m.item_weights_)
    again = back.recommend(["u0", "u1"], n=5, rerankers=knobs)
    assert again.items.tolist() == rec.items.tolist()


def test_service_serves_an_ease_model(tmp_path):
    pytest.importorskip("sqlalchemy")
    from serving_helpers import block_of, planted_frames

    from deepcuts.serving.service import RecommenderService
    from deepcuts.serving.store import Store, default_url

    store = Store(default_url(tmp_path))
    store.import_play_counts(*planted_frames())
    svc = RecommenderService(
        store, tmp_path, model="ease", model_params={"regularization": 5.0}, seed=False
    )
    svc.start()
    assert svc.handle.kind == "ease" and isinstance(svc.handle.model, EASE)
    items = svc.recommend("u5", n=3)["items"]
    assert len(items) == 3
    assert all(block_of(it["artist"]) == 0 for it in items)  # u5 is in taste block 0
