"""``deepcuts ingest`` and ``--data PATH``; bad input end to end through the CLI (issue 2).

Every bad-input case goes through ``main(argv)``: exit status 2, one line on stderr naming the
file, the line and the field, no traceback, and no output file.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from deepcuts.cli import main
from deepcuts.data import Interactions, load_lastfm2k
from deepcuts.data.datasets import bundled_path

TRACKS = "TR1<SEP>SO1<SEP>ABBA<SEP>SOS\nTR2<SEP>SO2<SEP>Queen feat. Bowie<SEP>Under Pressure\n"
TRIPLETS = "u1\tSO1\t3\nu1\tSO2\t1\nu2\tSO2\t5\nu3\tSO1\t2\nu3\tSO2\t2\n"
L1K = (
    "u1\t2009-05-04T23:08:57Z\t\tABBA\t\tSOS\n"
    "u1\t2009-05-05T10:00:00Z\t\tQueen\t\tUnder Pressure\n"
    "u2\t2009-05-01T10:00:00Z\t\tABBA\t\tSOS\n"
    "u2\t2009-05-02T10:00:00Z\t\tQueen\t\tBo Rhap\n"
    "u2\t2009-05-03T10:00:00Z\t\tABBA\t\tWaterloo\n"
)
LB = "".join(
    json.dumps(
        {"listened_at": t, "user_name": u, "track_metadata": {"artist_name": a, "track_name": "x"}}
    )
    + "\n"
    for u, a, t in [("ann", "ABBA", 10), ("ann", "Queen", 20), ("bob", "ABBA", 5)]
)
CSV = "uid,artist,plays\nann,ABBA,3\nbob,ABBA,1\nann,Queen,2\n"


def write(path: Path, text, encoding="utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding=encoding)
    return path


def run_cli(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# ----------------------------------------------------------------------------- good input
def test_ingest_hetrec_with_filters_then_train_and_evaluate(tmp_path, capsys):
    out = tmp_path / "l2k"
    argv = ["ingest", bundled_path("lastfm2k"), "-o", out, "--min-items-per-user", "2",
            "--min-users-per-item", "2", "--k-core"]  # fmt: skip
    code, stdout, err = run_cli(argv, capsys)
    assert code == 0, err
    x = Interactions.load(out)
    full = load_lastfm2k()
    assert x.n_items < full.n_items and x.n_users <= full.n_users
    assert (x.matrix.getnnz(axis=1) >= 2).all() and (x.matrix.getnnz(axis=0) >= 2).all()
    assert x.meta["filtered"]["iterate"] is True and "filtered: dropped" in stdout
    code, stdout, err = run_cli(["train", "--data", out, "--model", "popularity",
                                 "-o", tmp_path / "pop"], capsys)  # fmt: skip
    assert code == 0, err
    assert f"on {x.n_users} users x {x.n_items} items" in stdout
    code, stdout, err = run_cli(["evaluate", "--data", f"{out}.npz", "--model", "popularity",
                                 "--metrics", "ndcg", "--k", "10"], capsys)  # fmt: skip
    assert code == 0, err
    assert f"{x.n_users} users x {x.n_items} items" in stdout and "ndcg@10" in stdout


def test_ingest_msd(tmp_path, capsys):
    trip = write(tmp_path / "train_triplets.txt", TRIPLETS)
    tracks = write(tmp_path / "unique_tracks.txt", TRACKS)
    code, _, err = run_cli(["ingest", trip, "--format", "msd", "--tracks", tracks,
                            "-o", tmp_path / "msd"], capsys)  # fmt: skip
    assert code == 0, err
    x = Interactions.load(tmp_path / "msd")
    df = x.to_frame().set_index(["user", "item"])["count"]
    assert df[("u1", "abba")] == 3 and df[("u1", "queen")] == 1 and df[("u3", "queen")] == 2
    assert x.items.set_index("item").loc["queen", "name"] == "Queen"


def test_ingest_timestamped_then_leave_last_out(tmp_path, capsys):
    src = write(tmp_path / "listens.tsv", L1K)
    code, stdout, err = run_cli(["ingest", src, "--format", "lastfm1k", "-o", tmp_path / "l1k"],
                                capsys)  # fmt: skip
    assert code == 0, err
    assert "with timestamps" in stdout
    x = Interactions.load(tmp_path / "l1k")
    assert x.timestamps is not None
    f = x.to_frame().set_index(["user", "item"])
    assert f.loc[("u2", "abba"), "count"] == 2
    # the last ABBA listen of u2 was 2009-05-03T10:00:00Z
    assert f.loc[("u2", "abba"), "timestamp"] == 1241344800
    code, stdout, err = run_cli(["evaluate", "--data", tmp_path / "l1k", "--split",
                                 "leave-last-out", "--model", "popularity", "--metrics",
                                 "recall", "--k", "1"], capsys)  # fmt: skip
    assert code == 0, err
    assert "2 test users" in stdout  # both users hold out their latest artist


def test_ingest_listenbrainz_and_table(tmp_path, capsys):
    lb = write(tmp_path / "listens.jsonl", LB)
    assert run_cli(["ingest", lb, "-o", tmp_path / "lb"], capsys)[0] == 0
    x = Interactions.load(tmp_path / "lb")
    assert sorted(x.user_map.ids.tolist()) == ["ann", "bob"] and x.timestamps is not None
    csv = write(tmp_path / "plays.csv", CSV)
    code, _, err = run_cli(["ingest", csv, "--columns", "user=uid,item=artist,count=plays",
                            "-o", tmp_path / "t"], capsys)  # fmt: skip
    assert code == 0, err
    t = Interactions.load(tmp_path / "t")
    assert t.matrix.toarray().tolist() == [[3.0, 2.0], [1.0, 0.0]]


def test_recommend_with_data_folds_in_histories(tmp_path, capsys):
    model = tmp_path / "knn"
    assert run_cli(["train", "--model", "itemknn", "-o", model], capsys)[0] == 0
    code, out_model, _ = run_cli(["recommend", "--model-file", model, "--user", "2", "-n", "5",
                                  "--format", "json"], capsys)  # fmt: skip
    assert code == 0
    # the same histories from a saved copy of the data give the same lists
    load_lastfm2k().save(tmp_path / "same")
    code, out_data, err = run_cli(["recommend", "--model-file", model, "--data", tmp_path / "same",
                                   "--user", "2", "-n", "5", "--format", "json"], capsys)  # fmt: skip
    assert code == 0, err
    items = [r["item"] for r in json.loads(out_model)[0]["items"]]
    assert [r["item"] for r in json.loads(out_data)[0]["items"]] == items
    code, _, err = run_cli(["recommend", "--model-file", model, "--data", tmp_path / "same",
                            "--user", "424242"], capsys)  # fmt: skip
    assert code == 2 and "unknown user id(s) [424242]" in err


# ----------------------------------------------------------------------------- bad input
def _hetrec(folder: Path, user_artists) -> Path:
    write(folder / "user_artists.dat", user_artists)
    write(folder / "artists.dat", "id\tname\turl\tpictureURL\n1\tABBA\tu\tp\n2\tQueen\tu\tp\n")
    return folder


UA = "userID\tartistID\tweight\r\n2\t1\t5\r\n"
OK_MSD = "u1\tSO1\t3\n"
OK_L1K = "u1\t2009-05-04T23:08:57Z\t\tABBA\t\tSOS\n"
OK_LB = LB.splitlines(keepends=True)[0]

# (case id, format, files {name: content}, source name, expected fragments of the message)
BAD = [
    # -- HetRec (mixed CRLF / LF line ends as in the original files)
    ("hetrec-malformed", "hetrec", {"user_artists.dat": UA + "3\t2\n"}, ".",
     ["user_artists.dat", "line 3", "expected 3", "fix or remove this line"]),
    ("hetrec-negative", "hetrec", {"user_artists.dat": UA + "3\t2\t-4\n"}, ".",
     ["user_artists.dat", "line 3", "field 'weight'", "'-4'", ">= 0"]),
    ("hetrec-nonnumeric", "hetrec", {"user_artists.dat": UA + "3\t2\tlots\n"}, ".",
     ["user_artists.dat", "line 3", "field 'weight'", "'lots'"]),
    ("hetrec-empty", "hetrec", {"user_artists.dat": ""}, ".",
     ["user_artists.dat", "file is empty"]),
    ("hetrec-encoding", "hetrec", {"user_artists.dat": UA.encode() + b"3\t2\t4\xff\n"}, ".",
     ["user_artists.dat", "line 3", "field 'weight'", "0xff", "--encoding latin-1"]),
    # -- MSD taste profile
    ("msd-malformed", "msd", {"t.txt": OK_MSD + "u2\tSO2\n"}, "t.txt",
     ["t.txt", "line 2", "expected 3", "(user, song, count)"]),
    ("msd-negative", "msd", {"t.txt": OK_MSD + "u2\tSO2\t-1\n"}, "t.txt",
     ["t.txt", "line 2", "field 'count'", "'-1' is negative", "non-negative"]),
    ("msd-nonnumeric", "msd", {"t.txt": OK_MSD + "u2\tSO2\tthree\n"}, "t.txt",
     ["t.txt", "line 2", "field 'count'", "'three' is not a number"]),
    ("msd-empty", "msd", {"t.txt": ""}, "t.txt", ["t.txt", "file is empty"]),
    ("msd-encoding", "msd", {"t.txt": OK_MSD.encode() + b"u\xe92\tSO2\t1\n"}, "t.txt",
     ["t.txt", "line 2", "field 'user'", "0xe9", "--encoding"]),
    ("msd-unknown-song", "msd", {"t.txt": OK_MSD + "u2\tSO9\t1\n"}, "t.txt",
     ["t.txt", "line 2", "field 'song'", "'SO9'", "--drop-unknown-songs"]),
    ("msd-tracks-encoding", "msd", {"t.txt": OK_MSD, "tracks.txt": b"TR1<SEP>SO1<SEP>Bj\xf6rk<SEP>x\n"},
     "t.txt", ["tracks.txt", "line 1", "field 'artist_name'", "0xf6"]),
    ("msd-tracks-empty", "msd", {"t.txt": OK_MSD, "tracks.txt": ""}, "t.txt",
     ["tracks.txt", "file is empty"]),
    # -- Last.fm 1K listens
    ("lastfm1k-malformed", "lastfm1k", {"l.tsv": OK_L1K + "u1\t2009-05-04T23:08:57Z\tABBA\n"},
     "l.tsv", ["l.tsv", "line 2", "expected 6"]),
    ("lastfm1k-bad-time", "lastfm1k", {"l.tsv": OK_L1K + "u1\tyesterday\t\tABBA\t\tSOS\n"},
     "l.tsv", ["l.tsv", "line 2", "field 'time'", "'yesterday'", "ISO-8601"]),
    ("lastfm1k-empty", "lastfm1k", {"l.tsv": ""}, "l.tsv", ["l.tsv", "file is empty"]),
    ("lastfm1k-encoding", "lastfm1k", {"l.tsv": OK_L1K.encode() + b"u1\t2009-05-04T23:08:57Z\t\tBj\xf6rk\t\tx\n"},
     "l.tsv", ["l.tsv", "line 2", "field 'artist'", "0xf6"]),
    # -- ListenBrainz JSON lines
    ("listenbrainz-malformed", "listenbrainz", {"l.jsonl": OK_LB + '{"listened_at": 1,\n'},
     "l.jsonl", ["l.jsonl", "line 2", "not valid JSON"]),
    ("listenbrainz-bad-time", "listenbrainz",
     {"l.jsonl": OK_LB + OK_LB.replace('"listened_at": 10', '"listened_at": "soon"')},
     "l.jsonl", ["l.jsonl", "line 2", "field 'listened_at'", "'soon'"]),
    ("listenbrainz-empty", "listenbrainz", {"l.jsonl": ""}, "l.jsonl", ["l.jsonl", "file is empty"]),
    ("listenbrainz-encoding", "listenbrainz", {"l.jsonl": OK_LB.encode() + b'{"x": "\xff"}\n'},
     "l.jsonl", ["l.jsonl", "line 2", "0xff"]),
    # -- generic table
    ("table-malformed", "table", {"p.csv": "user,item,count\na,ABBA,1\nb,ABBA,1,9\n"}, "p.csv",
     ["p.csv", "line 3", "expected 3"]),
    ("table-unclosed-quote", "table", {"p.csv": 'user,item,count\na,ABBA,1\nb,"ABBA,1\n'}, "p.csv",
     ["p.csv", "line 3", "quoted field"]),
    ("table-negative", "table", {"p.csv": "user,item,count\na,ABBA,1\nb,ABBA,-2\n"}, "p.csv",
     ["p.csv", "line 3", "field 'count'", "'-2' is negative"]),
    ("table-nonnumeric", "table", {"p.csv": "user,item,count\na,ABBA,1\nb,ABBA,x\n"}, "p.csv",
     ["p.csv", "line 3", "field 'count'", "'x' is not a number"]),
    ("table-empty", "table", {"p.csv": ""}, "p.csv", ["p.csv", "file is empty"]),
    ("table-header-only", "table", {"p.csv": "user,item,count\n"}, "p.csv",
     ["p.csv", "no rows"]),
    ("table-encoding", "table", {"p.csv": b"user,item,count\na,Bj\xf6rk,1\n"}, "p.csv",
     ["p.csv", "line 2", "field 'item'", "0xf6"]),
    ("table-missing-column", "table", {"p.csv": "uid,item,count\na,ABBA,1\n"}, "p.csv",
     ["p.csv", "line 1", "field 'user'", "columns='user=YOUR_COLUMN'"]),
]  # fmt: skip


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_bad_input_one_clear_line_no_output(case, tmp_path, capsys, monkeypatch):
    name, fmt, files, source, fragments = case
    src_dir = tmp_path / "src"
    if fmt == "hetrec":
        _hetrec(src_dir, files["user_artists.dat"])
    else:
        for fname, content in files.items():
            write(src_dir / fname, content)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    argv = ["ingest", src_dir / source, "--format", fmt, "-o", out_dir / "dataset"]
    if fmt == "msd":
        if "tracks.txt" not in files:
            write(src_dir / "tracks.txt", TRACKS)
        argv += ["--tracks", src_dir / "tracks.txt"]
    code, out, err = run_cli(argv, capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("deepcuts ingest: error: ")
    for frag in fragments:
        assert frag in err, (frag, err)
    assert "Traceback" not in err
    assert list(out_dir.iterdir()) == []  # no partial output


def test_bad_options(tmp_path, capsys):
    trip = write(tmp_path / "t.txt", TRIPLETS)
    code, _, err = run_cli(["ingest", trip, "--format", "msd", "-o", tmp_path / "o"], capsys)
    assert code == 2 and "--tracks unique_tracks.txt" in err
    code, _, err = run_cli(["ingest", trip, "--format", "lastfm1k", "--tracks", trip,
                            "-o", tmp_path / "o"], capsys)  # fmt: skip
    assert code == 2 and "--tracks does not apply to --format lastfm1k" in err
    code, _, err = run_cli(["ingest", trip, "-o", tmp_path / "o"], capsys)
    assert code == 2 and "cannot tell the format" in err and "--format" in err
    code, _, err = run_cli(["ingest", tmp_path / "nope.csv", "-o", tmp_path / "o"], capsys)
    assert code == 2 and "nope.csv: file not found" in err
    code, _, err = run_cli(["train", "--data", trip, "--model", "popularity", "-o",
                            tmp_path / "m"], capsys)  # fmt: skip
    assert code == 2 and f"deepcuts ingest {trip}" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.txt"]


def test_corrupt_dataset_through_cli(tmp_path, capsys):
    load_lastfm2k().save(tmp_path / "d")
    npz = tmp_path / "d.npz"
    npz.write_bytes(npz.read_bytes()[:1000])
    code, _, err = run_cli(["train", "--data", tmp_path / "d", "--model", "popularity",
                            "-o", tmp_path / "m"], capsys)  # fmt: skip
    assert code == 2 and "d.npz: checksum" in err and "Traceback" not in err
    assert not (tmp_path / "m.json").exists()


def test_real_process_exit_status_and_stderr(tmp_path):
    """The installed entry point, as a user runs it: status 2, one line, no traceback."""
    bad = write(tmp_path / "p.csv", "user,item,count\na,ABBA,1\nb,ABBA,-2\n")
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    r = subprocess.run(
        [sys.executable, "-m", "deepcuts.cli", "ingest", str(bad), "-o", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert r.returncode == 2
    assert r.stderr.strip() == (
        f"deepcuts ingest: error: {bad}, line 3, field 'count': count '-2' is negative; "
        "play counts must be non-negative numbers"
    )
    assert not (tmp_path / "o.json").exists() and not (tmp_path / "o.npz").exists()


def test_parquet_bad_input(tmp_path, capsys):
    import pandas as pd

    df = pd.DataFrame({"uid": ["a", "b", "a"], "artist": ["X", "Y", "Y"], "plays": [1, 2, -3]})
    df.to_parquet(tmp_path / "neg.parquet")
    (tmp_path / "fake.parquet").write_bytes(b"PAR1 this is not parquet")
    out = tmp_path / "out"
    out.mkdir()
    cols = ["--columns", "user=uid,item=artist,count=plays"]
    code, _, err = run_cli(["ingest", tmp_path / "neg.parquet", *cols, "-o", out / "d"], capsys)
    assert code == 2
    assert "neg.parquet, line 3, field 'plays': count -3 is negative" in err
    code, _, err = run_cli(["ingest", tmp_path / "fake.parquet", *cols, "-o", out / "d"], capsys)
    assert code == 2 and "fake.parquet: not a Parquet file" in err and "Traceback" not in err
    assert list(out.iterdir()) == []


def test_closed_pipe_is_not_an_error(tmp_path):
    """`deepcuts train ... | head -0`: the reader is gone before the output; exit 0, no message."""
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    argv = [sys.executable, "-m", "deepcuts.cli", "train", "--model", "popularity",
            "-o", str(tmp_path / "pop")]  # fmt: skip
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    p.stdout.close()  # the reader goes away before anything is printed
    err = p.stderr.read().decode()
    assert p.wait(timeout=120) == 0
    assert err == ""
    assert (tmp_path / "pop.json").exists()  # the work itself was done
