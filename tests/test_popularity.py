import numpy as np

from deepcuts.data import load_lastfm2k
from deepcuts.models import Popularity
from deepcuts.testing import RecommenderContract


class TestPopularityContract(RecommenderContract):
    personalised = False

    def make_model(self):
        return Popularity()


def test_popularity_ranks_by_listeners():
    x = load_lastfm2k()
    rec = Popularity().fit(x).recommend(2, n=3, filter_played=False)
    pop = x.item_popularity()
    top3 = np.argsort(-pop, kind="stable")[:3]
    assert rec.item_index.tolist() == top3.tolist()
    assert rec.names[0] == "Lady Gaga"
