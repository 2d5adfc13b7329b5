"""Generic table reader (CSV/TSV/Parquet with a column mapping) and the dispatcher (issue 2)."""

import pandas as pd
import pytest

from deepcuts.data import read_interactions, read_table
from deepcuts.exceptions import DataError

ROWS = pd.DataFrame(
    {
        "uid": ["a", "a", "b", "c", "a"],
        "artist": ["x", "y", "x", "z", "x"],
        "plays": [3, 1, 2, 5, 4],
        "when": [
            "2020-01-01T00:00:00Z",
            "2020-01-02T00:00:00Z",
            "2021-01-01T00:00:00Z",
            "2020-05-01T00:00:00Z",
            "2019-01-01T00:00:00Z",
        ],
        "label": ["X!", "Y!", "X!", 'Z, "the" one', "X!"],
    }
)
MAP = "user=uid,item=artist,count=plays,time=when,name=label"


def check(x):
    f = x.to_frame().set_index(["user", "item"])
    assert f.loc[("a", "x"), "count"] == 7
    assert f.loc[("a", "x"), "timestamp"] == pd.Timestamp("2020-01-01", tz="UTC").value // 10**9
    assert x.shape == (3, 3)
    assert dict(zip(x.items["item"], x.items["name"]))["z"] == 'Z, "the" one'


@pytest.mark.parametrize("kind", ["csv", "tsv", "parquet"])
def test_formats_agree(tmp_path, kind):
    path = tmp_path / f"t.{kind}"
    if kind == "parquet":
        ROWS.to_parquet(path)
    else:
        ROWS.to_csv(path, sep="," if kind == "csv" else "\t", index=False)
    check(read_table(path, columns=MAP, block_bytes=30))
    check(read_interactions(path, format="table", columns=MAP))


def test_default_columns_and_unit_counts(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("user,item\nu,i\nu,i\nv,i\n")
    x = read_table(path)
    assert x.matrix.toarray().tolist() == [[2.0], [1.0]] and x.timestamps is None


def test_missing_column_and_bad_values(tmp_path):
    path = tmp_path / "t.csv"
    ROWS.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"line 1, field 'user'.*columns='user=YOUR_COLUMN'"):
        read_table(path)
    with pytest.raises(DataError, match=r"field 'nope'"):
        read_table(path, columns="user=uid,item=nope")
    with pytest.raises(DataError, match=r"unknown column role"):
        read_table(path, columns="listener=uid")
    bad = ROWS.astype({"plays": object}).copy()
    bad["plays"] = bad["plays"].astype(str)
    bad.loc[3, "plays"] = "lots"
    bad.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"line 5, field 'plays'"):
        read_table(path, columns=MAP)
    pq = tmp_path / "t.parquet"
    bad.to_parquet(pq)
    with pytest.raises(DataError, match=r"line 4, field 'plays'"):
        read_table(pq, columns=MAP)


def test_unknown_format(tmp_path):
    path = tmp_path / "t.xyz"
    path.write_text("a\n")
    with pytest.raises(DataError, match="cannot tell the format"):
        read_interactions(path)
    with pytest.raises(DataError, match="unknown format 'excel'"):
        read_interactions(path, format="excel")
    with pytest.raises(DataError, match="needs a song -> artist mapping"):
        read_interactions(path, format="msd")
