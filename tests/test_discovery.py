"""Two kinds of novelty for track data (issue 5): new artist vs new track by a known artist."""

import numpy as np
import pytest
import scipy.sparse as sp

from deepcuts.data import Interactions
from deepcuts.evaluation import evaluate, user_holdout_split
from deepcuts.evaluation.metrics import artist_discovery
from deepcuts.exceptions import DeepcutsError
from deepcuts.models import Popularity
from deepcuts.rerank import item_artist_codes
from deepcuts.testing import planted_blocks


def test_artist_discovery_hand_built():
    #          t0 t1 t2 t3 t4 t5
    artist = np.array([0, 0, 1, 2, 2, -1])  # A A B C C unknown
    history = sp.csr_matrix(
        np.array(
            [
                [3, 0, 0, 1, 0, 0],  # u0 knows A (t0) and C (t3)
                [0, 0, 5, 0, 0, 0],  # u1 knows B (t2)
                [0, 0, 0, 0, 0, 0],  # u2 knows nothing
            ],
            np.float32,
        )
    )
    rec = np.array(
        [
            [1, 2, 4, 5, 0],  # new track by A, new artist B, new track by C, unknown, known t0
            [0, 1, -1, -1, -1],  # two tracks of new artist A
            [-1, -1, -1, -1, -1],
        ]
    )
    new_artist, new_track = artist_discovery(rec, history, artist)
    np.testing.assert_allclose(new_artist[:2], [1 / 4, 1.0])
    np.testing.assert_allclose(new_track[:2], [2 / 4, 0.0])
    assert np.isnan(new_artist[2]) and np.isnan(new_track[2])
    # cut-off k=2: u0's first two are one of each
    a2, t2 = artist_discovery(rec, history, artist, k=2)
    assert a2[0] == 0.5 and t2[0] == 0.5


def _track_data():
    base = planted_blocks(60, 30, 3, density=0.4, random_state=5)
    artists = [f"artist{k // 3}" for k in range(base.n_items)]  # 3 tracks per artist
    items = base.items.assign(artist=artists)
    return Interactions(base.matrix, base.user_map, base.item_map, items=items)


def test_evaluate_reports_both_novelties_for_track_data():
    x = _track_data()
    train, test = user_holdout_split(x, random_state=0)
    model = Popularity().fit(train)
    per_user, means = evaluate(model, train, test, k=5, metrics=["new_artist", "new_track"])
    uidx = train.user_map.index(per_user["user"].to_numpy(dtype=object))
    idx, _, _ = model.rank_index(uidx, train.matrix[uidx], 5)
    a, t = artist_discovery(idx, train.matrix[uidx], item_artist_codes(train), 5)
    np.testing.assert_allclose(per_user["new_artist@5"], a)
    np.testing.assert_allclose(per_user["new_track@5"], t)
    assert 0 < means["new_artist@5"] < 1 and 0 < means["new_track@5"] < 1
    np.testing.assert_array_less(per_user["new_artist@5"] + per_user["new_track@5"], 1 + 1e-12)


def test_discovery_metrics_need_artist_column():
    train, test = user_holdout_split(planted_blocks(30, 12, 3, random_state=0), random_state=0)
    with pytest.raises(DeepcutsError, match="artist"):
        evaluate(Popularity(), train, test, k=5, metrics=["new_artist"])
