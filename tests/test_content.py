"""ContentKNN and feature tables (issue 7)."""

import numpy as np
import pandas as pd
import pytest

from deepcuts.data import load_lastfm2k
from deepcuts.data.datasets import shared_data_path
from deepcuts.data.features import (
    FeatureTable,
    normalize_name,
    read_feature_table,
    read_gtzan_features,
    read_spotify_artists,
)
from deepcuts.exceptions import DataError, DeepcutsError
from deepcuts.models import ContentKNN, feature_neighbors, load_model
from deepcuts.testing import RecommenderContract
from deepcuts.testing.synthetic import planted_blocks


def block_features(n_items=60, n_blocks=3, noise=0.3, seed=0, named=False):
    """Features that encode each synthetic item's taste block plus noise."""
    rng = np.random.default_rng(seed)
    block = np.arange(n_items) % n_blocks
    x = np.eye(n_blocks)[block] * 3 + noise * rng.standard_normal((n_items, n_blocks))
    df = pd.DataFrame(x, columns=[f"f{k}" for k in range(n_blocks)])
    df.insert(0, "item", [f"ARTIST {k} " if named else f"i{k}" for k in range(n_items)])
    return FeatureTable.from_frame(df, id_col="item")


class TestContentKNNContract(RecommenderContract):
    def make_model(self):
        return ContentKNN(features=block_features(), match="id", k=20)


class TestContentKNNProfileContract(RecommenderContract):
    def make_model(self):
        return ContentKNN(features=block_features(named=True), k=None, weighting="log")


def test_standardised_and_transform():
    t = block_features()
    np.testing.assert_allclose(t.values.mean(axis=0), 0, atol=1e-6)
    np.testing.assert_allclose(t.values.std(axis=0), 1, atol=1e-5)
    np.testing.assert_allclose(t.transform(t.raw[:3]), t.values[:3], atol=1e-6)
    with pytest.raises(DeepcutsError, match="expected shape"):
        t.transform(np.zeros((2, 5)))


def test_align_by_normalised_name():
    x = planted_blocks(30, 12, 3, random_state=1)  # names "artist <k>"
    df = pd.DataFrame({"name": ["  Artist 3", "ARTIST  0", "artist 99"], "v": [1.0, 2.0, 3.0]})
    t = FeatureTable.from_frame(df, id_col="name")
    rows = t.align(x.item_map, item_names=x.item_names())
    got = {name: r for name, r in zip(x.item_names(), rows) if r >= 0}
    assert got == {"artist 3": 0, "artist 0": 1}
    assert normalize_name("Ｂｊöｒｋ") == "bjork"  # same key as deepcuts.data.artists
    assert normalize_name("The Beatles") == normalize_name("Beatles, The") == "beatles"


def test_table_errors(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("name,a\nx,1\ny,oops\n")
    with pytest.raises(DataError, match=r"t.csv.*field 'a'.*'oops' in data row 2"):
        read_feature_table(p, columns=["a"])
    p.write_text("name,a\nx,1\nx,2\n")
    with pytest.raises(DataError, match="duplicates"):
        read_feature_table(p)
    p.write_text("name,label\nx,rock\n")
    with pytest.raises(DataError, match="no numeric feature columns"):
        read_feature_table(p)
    with pytest.raises(DataError, match="not a GTZAN"):
        read_gtzan_features(p)
    with pytest.raises(DataError, match="not found"):
        read_feature_table(tmp_path / "none.csv")


def test_reads_extraction_output(tmp_path):
    p = tmp_path / "features.csv"
    p.write_text(
        "path,file,size,mtime_ns,duration_s,tempo,key,mode,moods\n"
        "/a/x.ogg,x.ogg,10,5,3.0,120,4,1,happy\n/a/y.ogg,y.ogg,11,6,4.0,90,2,0,sad;calm\n"
    )
    t = read_feature_table(p)
    assert t.ids.tolist() == ["x.ogg", "y.ogg"] and t.columns == ["tempo", "mode"]


def test_similar_items_and_unfeatured_items():
    x = planted_blocks(60, 30, 3, random_state=0)
    t = block_features(20)  # items i20..i29 have no features
    m = ContentKNN(features=t, match="id", k=5).fit(x)
    sim = m.similar_items("i0", n=6)
    assert all(int(i[1:]) % 3 == 0 for i in sim.items)
    assert not set(sim.items) & {f"i{k}" for k in range(20, 30)}
    with pytest.raises(DeepcutsError, match="no content features"):
        m.similar_items("i25")
    rec = m.recommend("u0", n=100, filter_played=False).to_frame()
    assert len(rec) == 20  # only featured items are recommendable
    # a listener whose history has no featured item gets popular featured items, tiny scores
    r = m.recommend_history({"i25": 3, "i26": 1}, n=5)
    assert r.scores.max() <= 1e-3 and len(r) == 5


def test_fit_errors():
    x = planted_blocks(30, 12, 3, random_state=1)
    with pytest.raises(DeepcutsError, match="needs features"):
        ContentKNN().fit(x)
    with pytest.raises(DeepcutsError, match="no item matches"):
        ContentKNN(features=block_features(named=True), match="id").fit(x)
    with pytest.raises(DeepcutsError, match="k must be"):
        ContentKNN(features=block_features(12), match="id", k=0).fit(x)


def test_loaded_model_keeps_features(tmp_path):
    x = planted_blocks(30, 12, 3, random_state=1)
    m = ContentKNN(features=block_features(12), match="id", k=4).fit(x)
    m.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert loaded.features is None
    assert (
        loaded.similar_items("i1", n=3).items.tolist() == m.similar_items("i1", n=3).items.tolist()
    )


def test_feature_neighbors_leave_self_out():
    t = block_features(30, noise=0.1)
    nb = feature_neighbors(t, 5)
    assert len(nb) == 150 and not (nb["query"] == nb["neighbor"]).any()
    same = [int(a[1:]) % 3 == int(b[1:]) % 3 for a, b in zip(nb["query"], nb["neighbor"])]
    assert all(same)
    one = feature_neighbors(t, 2, queries=["i4"])
    assert one["query"].tolist() == ["i4", "i4"] and one["rank"].tolist() == [1, 2]
    assert all(int(b[1:]) % 3 == 1 for b in one["neighbor"])
    with pytest.raises(DeepcutsError, match="unknown feature table id"):
        feature_neighbors(t, 2, queries=["nope"])


@pytest.mark.realdata
def test_gtzan_genre_retrieval_beats_random():
    root = shared_data_path("gtzan-features")
    if root is None:
        pytest.skip(
            "GTZAN features not found: ../shared/data/gtzan-features is absent in this checkout"
        )
    t = read_gtzan_features(root / "features_30_sec.csv")
    assert len(t) == 1000 and len(t.columns) == 57
    nb = feature_neighbors(t, 10)
    p_at_10 = (nb["query_label"] == nb["neighbor_label"]).mean()
    assert p_at_10 > 0.4  # random: 99/999 ~ 0.1


@pytest.mark.realdata
def test_spotify_artists_join_lastfm():
    root = shared_data_path("spotify-artist-features")
    if root is None:
        pytest.skip("Spotify features not found: ../shared/data/spotify-artist-features is absent")
    t = read_spotify_artists(root / "data_by_artist.csv")
    assert '"Weird Al" Yankovic' in set(t.ids) and "$uicideBoy$" in set(t.ids)
    x = load_lastfm2k()
    m = ContentKNN(features=t).fit(x)
    assert 0.24 < m.has_features_.mean() < 0.27
    covered = x.matrix[:, m.has_features_].nnz / x.nnz
    assert 0.66 < covered < 0.70
    metallica = x.item_map.ids[list(x.item_names()).index("Metallica")]
    top = m.similar_items(metallica, n=5)
    assert len(top) == 5 and "Metallica" not in set(top.names)
