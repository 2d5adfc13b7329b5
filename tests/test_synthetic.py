"""The seeded generator with planted structure (deepcuts.data.synthetic)."""

import numpy as np
import pytest

from deepcuts.data import generate_listening, read_msd_taste_profile
from deepcuts.exceptions import DeepcutsError


@pytest.fixture(scope="module")
def data():
    return generate_listening(400, 3000, random_state=3)


def test_same_seed_same_data_other_seed_other_data(data):
    again = generate_listening(400, 3000, random_state=3)
    assert (again.interactions.matrix != data.interactions.matrix).nnz == 0
    other = generate_listening(400, 3000, random_state=4)
    assert (other.interactions.matrix != data.interactions.matrix).nnz > 0


def test_listens_follow_the_planted_tastes(data):
    x = data.interactions
    m = x.matrix.tocoo()
    genre_of_play = data.item_genre[m.col]
    in_taste = (data.user_genres[m.row] == genre_of_play[:, None]).any(axis=1)
    assert in_taste.all()  # every listen comes from one of the listener's tastes
    # one-taste users exist, in about the planted share, and play one genre only
    k = data.n_tastes
    assert 0.2 < (k == 1).mean() < 0.4
    one = np.flatnonzero(k == 1)
    rows = np.isin(m.row, one)
    assert (genre_of_play[rows] == data.user_genres[m.row[rows], 0]).all()
    np.testing.assert_allclose(data.user_taste_weights.sum(axis=1), 1.0)


def test_long_tail_and_home_scene(data):
    pop = data.interactions.item_popularity()
    top = np.sort(pop)[::-1][: len(pop) // 5].sum() / pop.sum()
    assert top > 0.5  # the top 20% of items hold most listeners
    assert (pop < 3).mean() > 0.3  # and a long tail of thinly played items
    # users play their home scene more than chance
    m = data.interactions.matrix.tocoo()
    home = (data.user_home_scene[m.row] == data.item_scene[m.col][:, None]).any(axis=1)
    assert home.mean() > 0.6
    cuts = data.deep_cuts(0)
    assert len(cuts) and np.isin(data.item_scene[cuts], data.user_home_scene[0]).all()


def test_item_metadata_and_taste_lookup(data):
    items = data.interactions.items
    assert {"name", "tags", "artist", "genre", "scene"} <= set(items.columns)
    assert items["tags"][0][0] == f"genre{data.item_genre[0]}"
    u = 0
    played = data.interactions.matrix[u].indices
    assert (data.item_taste_of(u, played) >= 0).all()


def test_song_level_taste_profile_round_trip(tmp_path):
    d = generate_listening(150, 1200, level="song", songs_per_artist=6, random_state=1)
    trip, mapping = d.write_taste_profile(tmp_path)
    back = read_msd_taste_profile(trip, mapping, level="track")
    assert back.nnz == d.interactions.nnz
    assert back.matrix.sum() == pytest.approx(np.rint(d.interactions.matrix.data).sum())
    assert d.item_artist.max() + 1 < 1200 / 3  # several songs per artist


def test_bad_arguments_are_named():
    with pytest.raises(DeepcutsError, match="max_tastes"):
        generate_listening(10, 100, n_genres=2, max_tastes=3)
    with pytest.raises(DeepcutsError, match="level"):
        generate_listening(10, 100, level="album")


def test_taste_profile_shape_scales_and_streams(tmp_path):
    from deepcuts.data import taste_profile_shape

    kw = taste_profile_shape(0.002)
    assert (kw["n_users"], kw["n_items"]) == (2039, 769)
    assert taste_profile_shape(1.0)["n_users"] == 1_019_318
    d = generate_listening(**kw, random_state=3)
    # tiny chunks: the streamed file must equal one written in a single chunk
    trip, mapping = d.write_taste_profile(tmp_path / "a", chunk_rows=1000)
    trip1, _ = d.write_taste_profile(tmp_path / "b")
    assert trip.read_bytes() == trip1.read_bytes()
    back = read_msd_taste_profile(trip, mapping, level="track")
    assert back.nnz == d.interactions.nnz
    gz, _ = d.write_taste_profile(tmp_path / "c", gzip=True, chunk_rows=777)
    assert read_msd_taste_profile(gz, mapping, level="track").nnz == d.interactions.nnz
    with pytest.raises(DeepcutsError, match="scale"):
        taste_profile_shape(0)
