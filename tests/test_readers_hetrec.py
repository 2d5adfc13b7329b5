"""HetRec 2011 Last.fm 2K reader: mixed line ends, latin-1 tags, bundled copy (issue 2)."""

import gzip

import numpy as np
import pandas as pd
import pytest

from deepcuts.data import load_lastfm2k, read_hetrec_lastfm
from deepcuts.data.datasets import bundled_path, shared_data_path
from deepcuts.exceptions import DataError


def make_hetrec(folder, gz=False):
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        # CRLF and LF mixed, as in the original distribution
        "user_artists.dat": b"userID\tartistID\tweight\r\n2\t51\t13883\r\n2\t52\t11690\n"
        b"3\t51\t5\r\n4\t53\t1\n",
        "artists.dat": b"id\tname\turl\tpictureURL\n51\tDuran Duran\tu51\tp\n"
        b"52\tMorcheeba\tu52\tp\n53\tSigur R&oacute;s\tu53\tp\n",
        # tags.dat is latin-1 in the original files
        "tags.dat": "tagID\ttagValue\r\n1\tnew wave\r\n2\tpost-rock\r\n3\tcafé\r\n".encode(
            "latin-1"
        ),
        "user_taggedartists.dat": b"userID\tartistID\ttagID\tday\tmonth\tyear\n"
        b"2\t51\t1\t1\t1\t2008\n3\t51\t1\t1\t1\t2008\n2\t51\t3\t1\t1\t2008\n"
        b"4\t53\t2\t1\t1\t2009\n4\t53\t3\t1\t1\t2009\n5\t53\t2\t1\t1\t2009\n",
    }
    for name, data in files.items():
        if gz:
            (folder / (name + ".gz")).write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)
    return folder


@pytest.mark.parametrize("gz", [False, True])
def test_small_folder(tmp_path, gz):
    x = read_hetrec_lastfm(make_hetrec(tmp_path / "h", gz=gz))
    assert x.shape == (3, 3)
    assert x.user_map.ids.tolist() == [2, 3, 4] and x.item_map.ids.tolist() == [51, 52, 53]
    assert x.matrix.toarray().tolist() == [[13883, 11690, 0], [5, 0, 0], [0, 0, 1]]
    items = x.items.set_index("item")
    assert items.loc[53, "name"] == "Sigur Rós"  # HTML entities unescaped
    # most-used tag first; latin-1 decoded
    assert items.loc[51, "tags"] == ["new wave", "café"]
    assert items.loc[53, "tags"] == ["post-rock", "café"]
    assert items.loc[52, "tags"] == []


def test_missing_and_bad_files(tmp_path):
    with pytest.raises(DataError, match="not a folder"):
        read_hetrec_lastfm(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="user_artists.dat not found"):
        read_hetrec_lastfm(tmp_path / "empty")
    h = make_hetrec(tmp_path / "h")
    (h / "user_artists.dat").write_bytes(b"userID\tartistID\tweight\n2\t51\t1.5x\n")
    with pytest.raises(DataError, match=r"user_artists.dat, line 2, field 'weight'"):
        read_hetrec_lastfm(h)
    (h / "user_artists.dat").write_bytes(b"userID\tartistID\tweight\n2\tfifty\t1\n")
    with pytest.raises(DataError, match=r"line 2, field 'artistID'.*integer"):
        read_hetrec_lastfm(h)


def test_bundled_copy():
    x = load_lastfm2k()
    assert x.shape == (1892, 17632) and x.nnz == 92834
    assert x.matrix.dtype == np.float32 and (x.matrix.data > 0).all()
    # every line of the shipped user_artists.dat is one stored pair with its weight
    raw = pd.read_csv(bundled_path("lastfm2k") / "user_artists.dat.gz", sep="\t")
    assert len(raw) == x.nnz
    assert x.matrix.data.astype(np.float64).sum() == raw["weight"].sum()
    u, i = x.user_map.index(raw["userID"].to_numpy()), x.item_map.index(raw["artistID"].to_numpy())
    np.testing.assert_array_equal(np.asarray(x.matrix[u, i]).ravel(), raw["weight"].to_numpy())
    names = dict(zip(x.items["item"], x.items["name"]))
    assert names[289] == "Britney Spears"
    tags = dict(zip(x.items["item"], x.items["tags"]))
    assert len(tags[289]) == 5 and "pop" in tags[289]


@pytest.mark.realdata
def test_bundled_matches_shared_original():
    src = shared_data_path("hetrec2011-lastfm-2k")
    if src is None:
        pytest.skip("../shared/data/hetrec2011-lastfm-2k is absent (fresh clone)")
    a, b = read_hetrec_lastfm(src), load_lastfm2k()
    assert a.user_map == b.user_map and a.item_map == b.item_map
    assert (a.matrix != b.matrix).nnz == 0
