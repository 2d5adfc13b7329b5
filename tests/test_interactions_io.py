"""Interactions.save / Interactions.load: round trips, atomicity, version and checksum (issue 2)."""

import json

import numpy as np
import pandas as pd
import pytest

from deepcuts.data import Interactions, load_lastfm2k, read_interactions
from deepcuts.data._persist import INTERACTIONS_VERSION, interactions_paths
from deepcuts.exceptions import DataError


def assert_same(a: Interactions, b: Interactions):
    assert a.shape == b.shape
    assert (a.matrix != b.matrix).nnz == 0
    assert a.matrix.dtype == b.matrix.dtype == np.float32
    assert a.user_map == b.user_map and a.item_map == b.item_map
    if a.timestamps is None:
        assert b.timestamps is None
    else:
        np.testing.assert_array_equal(a.timestamps, b.timestamps)


@pytest.fixture
def listens():
    df = pd.DataFrame(
        {
            "user": ["ann", "ann", "bob", "cy", "bob", "ann"],
            "item": ["abba", "björk", "abba", "queen", "abba", "abba"],
            "count": [3, 1, 5, 2, 1, 4],
            "time": [10, 30, 20, 7, 50, 5],
        }
    )
    items = pd.DataFrame(
        {
            "item": ["abba", "björk", "queen"],
            "name": ["ABBA", "Björk", None],
            "tags": [["pop", "swedish", "70s"], ["icelandic"], []],
            "year": [1972, 1977, 1970],
            "score": [0.5, np.nan, 1.0],
        }
    )
    x = Interactions.from_frame(df, time_col="time", items=items)
    x.meta.update({"source": "test", "nested": {"a": [1, 2]}, "count": np.int64(3)})
    return x


def test_round_trip_everything(tmp_path, listens):
    manifest = listens.save(tmp_path / "plays")
    assert manifest == tmp_path / "plays.json"
    assert (tmp_path / "plays.npz").exists()
    y = Interactions.load(tmp_path / "plays")
    assert_same(listens, y)
    np.testing.assert_array_equal(y.timestamps, [10, 30, 50, 7])  # last listen per pair
    assert y.items["tags"].tolist() == [["pop", "swedish", "70s"], ["icelandic"], []]
    # from_frame fills a missing name with the id
    assert y.items["name"].tolist() == ["ABBA", "Björk", "queen"]
    assert y.items["year"].tolist() == [1972, 1977, 1970]
    np.testing.assert_array_equal(y.items["score"].to_numpy(), [0.5, np.nan, 1.0])
    assert y.meta["source"] == "test" and y.meta["nested"] == {"a": [1, 2]}
    assert y.meta["count"] == 3
    # either suffix names the same pair of files
    assert_same(listens, Interactions.load(tmp_path / "plays.npz"))
    assert_same(listens, Interactions.load(tmp_path / "plays.json"))


def test_missing_string_values_survive(tmp_path):
    df = pd.DataFrame({"user": [1, 2], "item": [10, 20], "count": [1, 2]})
    x = Interactions.from_frame(df)
    items = pd.DataFrame({"item": [10, 20], "name": ["a", "b"], "url": ["http://x", None]})
    x = Interactions(x.matrix, x.user_map, x.item_map, items=items)
    x.save(tmp_path / "d")
    y = Interactions.load(tmp_path / "d")
    assert y.user_map.ids.tolist() == [1, 2] and y.item_map.ids.dtype.kind == "i"
    assert y.items["url"].iloc[0] == "http://x" and pd.isna(y.items["url"].iloc[1])


def test_lastfm2k_round_trip_and_read_interactions(tmp_path):
    x = load_lastfm2k()
    x.save(tmp_path / "l2k")
    y = read_interactions(tmp_path / "l2k.npz")  # format guessed from the suffix
    assert_same(x, y)
    assert y.items["name"].tolist() == x.items["name"].tolist()
    assert y.items["tags"].tolist() == x.items["tags"].tolist()
    assert y.items["url"].tolist() == x.items["url"].tolist()


def test_overwrite_is_atomic_and_leaves_no_temp_files(tmp_path, listens, monkeypatch):
    listens.save(tmp_path / "p")
    before = {f.name: f.read_bytes() for f in tmp_path.iterdir()}

    import deepcuts._fileio as fio

    real = fio.os.replace
    calls = []

    def failing_replace(src, dst):  # the rename into place fails (disk full, permissions)
        calls.append(dst)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fio.os, "replace", failing_replace)
    small = listens.subset(users=[0])
    with pytest.raises(OSError):
        small.save(tmp_path / "p")
    monkeypatch.setattr(fio.os, "replace", real)
    after = {f.name: f.read_bytes() for f in tmp_path.iterdir()}
    assert after == before  # old files intact, temporaries removed
    assert calls


def test_mixed_id_types_rejected_before_writing(tmp_path):
    df = pd.DataFrame({"user": ["a", 1], "item": ["x", "y"], "count": [1, 1]})
    x = Interactions.from_frame(df)
    with pytest.raises(DataError, match="mix types"):
        x.save(tmp_path / "m")
    assert not list(tmp_path.iterdir())


def test_load_errors_name_file_and_fix(tmp_path, listens):
    with pytest.raises(DataError, match=r"nope\.json.*deepcuts ingest"):
        Interactions.load(tmp_path / "nope")
    npz, js = interactions_paths(tmp_path / "p")
    listens.save(tmp_path / "p")
    # truncated arrays: checksum mismatch
    data = npz.read_bytes()
    npz.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"p\.npz.*checksum"):
        Interactions.load(tmp_path / "p")
    npz.unlink()
    with pytest.raises(DataError, match=r"p\.npz.*missing"):
        Interactions.load(tmp_path / "p")
    listens.save(tmp_path / "p")
    # a newer format version
    doc = json.loads(js.read_text())
    doc["format_version"] = INTERACTIONS_VERSION + 1
    js.write_text(json.dumps(doc))
    with pytest.raises(DataError, match=r"p\.json.*format version 2 is not supported.*again"):
        Interactions.load(tmp_path / "p")
    # a model manifest is not a dataset
    js.write_text(json.dumps({"format": "deepcuts-model", "format_version": 1}))
    with pytest.raises(DataError, match="saved model"):
        Interactions.load(tmp_path / "p")
    js.write_text("{not json")
    with pytest.raises(DataError, match="not a valid JSON"):
        Interactions.load(tmp_path / "p")
