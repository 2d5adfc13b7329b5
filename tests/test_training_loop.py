"""The epoch loop shared by ALS, BPR / MixtureOfTastes and PersonaALS (models._training).

The pinned values below were measured with the trainers' own loops, before they moved to
``EpochLoop``: the shared loop must give the same models (same seed, same early stop)."""

import numpy as np
import pytest
import scipy.sparse as sp

from deepcuts.data import generate_listening
from deepcuts.exceptions import DeepcutsError
from deepcuts.models import ALS, BPR, MixtureOfTastes
from deepcuts.models._training import EpochLoop, check_early_stopping


def _run(scores, rounds):
    calls = []
    loop = EpochLoop("test", len(scores) + 5, early_stopping_rounds=rounds)
    for it in loop:
        if it >= len(scores):
            break
        if loop.validate(it, scores[it], lambda it=it: calls.append(it) or it):
            break
    return loop, calls


def test_early_stopping_keeps_the_best_epoch():
    loop, calls = _run([0.1, 0.3, 0.2, 0.25, 0.9], rounds=2)
    assert loop.scores == [0.1, 0.3, 0.2, 0.25]  # stopped 2 epochs after the best
    assert loop.best_epoch == 1 and loop.best_score == 0.3 and loop.kept == 1
    assert calls == [0, 1]  # a snapshot at every new best
    # a tie does not beat the best
    loop, _ = _run([0.3, 0.3, 0.3], rounds=1)
    assert loop.scores == [0.3, 0.3] and loop.kept == 0
    # without early stopping: every epoch scored, no snapshot taken, nothing kept
    loop, calls = _run([0.1, 0.3, 0.2, 0.25, 0.9], rounds=None)
    assert loop.scores == [0.1, 0.3, 0.2, 0.25, 0.9] and loop.best_epoch == 4
    assert calls == [] and loop.kept is None
    # nothing scored: no epoch kept
    assert EpochLoop("empty", 0, early_stopping_rounds=3).kept is None


def test_check_early_stopping():
    check_early_stopping(None, None)
    check_early_stopping(2, object())
    with pytest.raises(DeepcutsError, match="needs validation"):
        check_early_stopping(2, None)
    for bad in (0, 1.5, True, "2"):
        with pytest.raises(DeepcutsError, match="early_stopping_rounds must be an integer >= 1"):
            check_early_stopping(bad, object())


@pytest.fixture(scope="module")
def split():
    x = generate_listening(300, 400, listens_per_user=30, random_state=0).interactions
    coo = sp.csr_matrix(x.matrix).tocoo()
    held = np.random.default_rng(1).random(coo.nnz) < 0.2

    def part(mask):
        return sp.csr_matrix((coo.data[mask], (coo.row[mask], coo.col[mask])), shape=x.shape)

    return x.with_matrix(part(~held)), part(held)


# (model, early stop epoch count, last validation NDCG@10, attribute, its first 3 values),
# measured before the refactor
PINNED = {
    "warp": (
        lambda v: BPR(
            factors=8,
            iterations=30,
            random_state=1,
            validation=v,
            early_stopping_rounds=2,
            learning_rate=0.2,
        ),  # fmt: skip
        16,
        0.365558437825865,
        "item_factors_",
        [0.371368408203125, 0.34665629267692566, 0.020047729834914207],
    ),
    "mixture": (
        lambda v: MixtureOfTastes(
            factors=8,
            n_personas=3,
            iterations=30,
            random_state=2,
            validation=v,
            early_stopping_rounds=2,
            learning_rate=0.2,
        ),  # fmt: skip
        11,
        0.37360332081940223,
        "attention_factors_",
        [-0.564279317855835, -0.4726252555847168, -0.4848642647266388],
    ),
    "als": (
        lambda v: ALS(
            factors=8,
            iterations=30,
            random_state=0,
            validation=v,
            early_stopping_rounds=1,
            regularization=0.001,
        ),  # fmt: skip
        7,
        0.3752138590240136,
        "user_factors_",
        [1.299821376800537, -0.6064931750297546, 3.139162063598633],
    ),
}


@pytest.mark.parametrize("name", sorted(PINNED))
def test_seeded_fits_with_early_stopping_are_unchanged(split, name):
    train, valid = split
    make, n_run, last, attr, first = PINNED[name]
    m = make(valid).fit(train)
    assert m.n_iterations_ == n_run and len(m.validation_history_) == n_run
    assert len(m.loss_history_) == n_run
    # the kept epoch is the best one, the last kept. Values to 1e-3: the Gram matrices come
    # from BLAS, whose float32 sums change in the last bits with its thread count (another
    # test in the suite may have changed it); ALS at regularization 0.001 carries that to
    # ~3e-5 relative in the factors. Epoch counts and the kept epoch are exact.
    assert m.validation_history_[-1] == pytest.approx(last, rel=1e-3)
    assert m.validation_history_[-1] == m.validation_history_.max()
    np.testing.assert_allclose(np.ravel(getattr(m, attr))[:3], first, rtol=1e-3)
