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


def _models():
    return [
        ALS(factors=4, iterations=2, random_state=0),
        ItemKNN(k=10),
        Popularity(),
        PersonaALS(factors=4, n_personas=2, iterations=2, random_state=0),
    ]


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
