"""A corpus of hostile input files for ``deepcuts ingest`` (issue 13), written by
:func:`write_corpus`.

Each case is ``(name, ingest arguments, expected)``: ``expected`` is the exact play counts
``{(user, item): count}`` the file must give (variants of a clean file: line endings, byte-order
marks, UTF-16, compression), ``"error"`` (the command must fail with one clear line and write
nothing), or ``"any"`` (either, but an output must hold finite counts).
"""

from __future__ import annotations

import codecs
import gzip
import io
import json
import zipfile
from pathlib import Path

CSV = "user,item,count\na,x,3\na,y,1\nb,x,2\nc,z,5\n"
CSV_COUNTS = {("a", "x"): 3.0, ("a", "y"): 1.0, ("b", "x"): 2.0, ("c", "z"): 5.0}
TSV_LINES = [
    ("a", "2009-05-04T10:00:00Z", "X"),
    ("a", "2009-05-04T10:05:00Z", "X"),
    ("a", "2009-05-04T10:09:00Z", "Y"),
    ("b", "2009-05-05T11:00:00Z", "X"),
]
TSV_COUNTS = {("a", "x"): 2.0, ("a", "y"): 1.0, ("b", "x"): 1.0}


def _tsv(lines) -> str:
    return "".join(f"{u}\t{t}\t\t{a}\t\ttrack\n" for u, t, a in lines)


def _lb(listened_at="1700000000", artist='"X"', user='"a"', extra="") -> str:
    return (
        f'{{"user_name": {user}, "listened_at": {listened_at}, "track_metadata": '
        f'{{"artist_name": {artist}, "track_name": "t"}}{extra}}}\n'
    )


LB = _lb() + _lb(artist='"Y"') + _lb(user='"b"')
LB_COUNTS = {("a", "x"): 1.0, ("a", "y"): 1.0, ("b", "x"): 1.0}


def _zip(members: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def cases() -> list[tuple[str, bytes | dict, list[str], object]]:
    """``(file name, content, extra ingest arguments, expected)``; a dict content is a folder."""
    table = ["--format", "table"]
    lfm = ["--format", "lastfm1k"]
    lb = ["--format", "listenbrainz"]
    c = CSV.encode()
    out: list = [
        # ---- table: clean variants that must give exactly CSV_COUNTS
        ("clean.csv", c, table, CSV_COUNTS),
        ("crlf.csv", CSV.replace("\n", "\r\n").encode(), table, CSV_COUNTS),
        ("cr.csv", CSV.replace("\n", "\r").encode(), table, "error"),  # CR only: one long line
        ("bom.csv", codecs.BOM_UTF8 + c, table, CSV_COUNTS),
        ("utf16.csv", CSV.encode("utf-16"), table, CSV_COUNTS),
        ("utf16be-bom.csv", codecs.BOM_UTF16_BE + CSV.encode("utf-16-be"), table, CSV_COUNTS),
        ("utf32.csv", CSV.encode("utf-32"), table, CSV_COUNTS),
        ("gz.csv.gz", gzip.compress(c), table, CSV_COUNTS),
        ("no-final-newline.csv", c.rstrip(b"\n"), table, CSV_COUNTS),
        ("split-counts.csv", c + b"a,x,0\n", table, CSV_COUNTS),
        # ---- table: must fail with one line
        ("empty.csv", b"", table, "error"),
        ("header-only.csv", b"user,item,count\n", table, "error"),
        ("blank.csv", b"\n\n  \n", table, "error"),
        ("binary.csv", bytes(range(256)) * 8, table, "error"),
        ("nul.csv", b"\x00" * 64, table, "error"),
        ("nul-in-field.csv", b"user,item,count\na\x00b,x,1\n", table, "any"),
        ("negative.csv", c + b"d,x,-1\n", table, "error"),
        ("nan.csv", c + b"d,x,nan\n", table, "error"),
        ("inf.csv", c + b"d,x,inf\n", table, "error"),
        ("1e39.csv", c + b"d,x,1e39\n", table, "error"),
        ("sum-inf.csv", c + b"d,x,3e38\nd,x,3e38\n", table, "error"),
        ("text-count.csv", c + b"d,x,many\n", table, "error"),
        ("short-line.csv", c + b"d,x\n", table, "error"),
        ("long-line.csv", c + b"d,x,1,2\n", table, "error"),
        ("open-quote.csv", c + b'"d,x,1\n', table, "error"),
        ("latin1.csv", c + "d,caf\u00e9,1\n".encode("latin-1"), table, "error"),
        ("utf16le-nobom.csv", CSV.encode("utf-16-le"), table, "error"),
        ("truncated.csv.gz", gzip.compress(c * 50)[:40], table, "error"),
        ("not-gzip.csv.gz", b"plain text, not gzip\n", table, "error"),
        ("zip-as.csv", _zip({"a.csv": c}), table, "error"),
        ("no-count-column.csv", b"user,item\na,x\nb,y\n", table, "any"),
        ("no-user-column.csv", b"who,item,count\na,x,1\n", table, "error"),
        ("empty-user.csv", c + b",x,1\n", table, "error"),
        ("empty-item.csv", c + b"d,,1\n", table, "error"),
        ("huge-field.csv", c + b"d," + b"y" * 200_000 + b",1\n", table, "any"),
        ("comma-count.csv", c + b'd,x,"1,000"\n', table, "error"),
        ("hex-count.csv", c + b"d,x,0x10\n", table, "error"),
        ("bool-count.csv", c + b"d,x,true\n", table, "error"),
        ("dup-header.csv", b"user,user,count\na,x,1\n", table, "error"),
        # ---- Last.fm 1K TSV
        ("clean.tsv", _tsv(TSV_LINES).encode(), lfm, TSV_COUNTS),
        ("crlf.tsv", _tsv(TSV_LINES).replace("\n", "\r\n").encode(), lfm, TSV_COUNTS),
        ("utf16.tsv", _tsv(TSV_LINES).encode("utf-16"), lfm, TSV_COUNTS),
        ("bad-time.tsv", _tsv([*TSV_LINES, ("c", "yesterday", "X")]).encode(), lfm, "error"),
        ("year-99999.tsv", _tsv([*TSV_LINES, ("c", "99999-01-01T00:00:00Z", "X")]).encode(), lfm, "error"),
        ("five-fields.tsv", _tsv(TSV_LINES).encode() + b"c\t2009-05-04T10:00:00Z\t\tX\t\n", lfm, "error"),
        ("only-empty-artists.tsv", _tsv([("a", "2009-05-04T10:00:00Z", " ")]).encode(), lfm, "error"),
        ("empty-user.tsv", _tsv([*TSV_LINES, ("", "2009-05-04T10:00:00Z", "X")]).encode(), lfm, "error"),
        ("binary.tsv", bytes(range(256)) * 4, lfm, "error"),
        # ---- ListenBrainz JSON lines
        ("clean.jsonl", LB.encode(), lb, LB_COUNTS),
        ("bom.jsonl", codecs.BOM_UTF8 + LB.encode(), lb, LB_COUNTS),
        ("utf16.jsonl", LB.encode("utf-16"), lb, LB_COUNTS),
        ("blank-lines.jsonl", LB.replace("\n", "\n\n\n").encode(), lb, LB_COUNTS),
        ("gz.jsonl.gz", gzip.compress(LB.encode()), lb, LB_COUNTS),
        ("export.zip", _zip({"listens/2023.jsonl": LB}), lb, LB_COUNTS),
        ("nan-time.jsonl", (LB + _lb("NaN")).encode(), lb, "error"),
        ("inf-time.jsonl", (LB + _lb("Infinity")).encode(), lb, "error"),
        ("1e300-time.jsonl", (LB + _lb("1e300")).encode(), lb, "error"),
        ("huge-int-time.jsonl", (LB + _lb("99999999999999999999999")).encode(), lb, "error"),
        ("negative-time.jsonl", (LB + _lb("-1")).encode(), lb, "error"),
        ("bool-time.jsonl", (LB + _lb("true")).encode(), lb, "error"),
        ("string-time.jsonl", (LB + _lb('"1700000000"')).encode(), lb, "error"),
        ("null-time.jsonl", (LB + _lb("null")).encode(), lb, "error"),
        ("number-artist.jsonl", (LB + _lb(artist="5")).encode(), lb, "error"),
        ("empty-artist.jsonl", (LB + _lb(artist='""')).encode(), lb, "error"),
        ("no-metadata.jsonl", LB.encode() + b'{"listened_at": 1, "user_name": "a"}\n', lb, "error"),
        # a JSON array of listens is ListenBrainz's other export format (issue 14)
        ("array.jsonl", b"[" + LB.replace("\n", ",").rstrip(",").encode() + b"]", lb, LB_COUNTS),
        ("not-object.jsonl", LB.encode() + b"[1, 2]\n", lb, "error"),
        ("broken-json.jsonl", LB.encode() + b'{"listened_at": \n', lb, "error"),
        ("deep-nesting.jsonl", b"[" * 100_000 + b"]" * 100_000 + b"\n", lb, "error"),
        ("no-user.jsonl", _lb(user="null").encode(), lb, "error"),
        ("invalid-utf8.jsonl", LB.encode() + _lb(artist='"\xff\xfe"').encode("latin-1"), lb, "error"),
        ("empty.zip", _zip({}), lb, "error"),
        ("no-listens.zip", _zip({"user.json": "{}"}), lb, "error"),
        ("truncated.zip", _zip({"listens/2023.jsonl": LB * 40})[:100], lb, "error"),
        ("empty-folder", {}, lb, "error"),
        ("folder", {"a.jsonl": LB}, lb, LB_COUNTS),
        ("deep-object.jsonl", (LB + '{"x": ' + "[" * 100_000 + "]" * 100_000 + "}\n").encode(), lb, "error"),
        ("nul.jsonl", LB.encode() + b"\x00" * 32 + b"\n", lb, "error"),
        # ---- other formats
        ("garbage.parquet", b"PAR1" + bytes(range(256)) + b"PAR1", table, "error"),
        ("bom-only.csv", codecs.BOM_UTF8, table, "error"),
        ("hetrec-garbage", {"user_artists.dat": "userID\tartistID\tweight\n2\t51\tlots\n"}, ["--format", "hetrec"], "error"),
        ("hetrec-empty", {"user_artists.dat": ""}, ["--format", "hetrec"], "error"),
        ("nul.tsv", _tsv(TSV_LINES).encode() + b"\x00\x00\x00\n", lfm, "error"),
    ]  # fmt: skip
    return out


def write_corpus(root: Path) -> list[tuple[Path, list[str], object]]:
    """Write every case of :func:`cases` under ``root``; returns ``(path, args, expected)``."""
    root.mkdir(parents=True, exist_ok=True)
    out = []
    for name, content, args, expected in cases():
        path = root / name
        if isinstance(content, dict):
            path.mkdir()
            for member, data in content.items():
                (path / member).write_text(data, encoding="utf-8")
        else:
            path.write_bytes(content)
        out.append((path, args, expected))
    return out


if __name__ == "__main__":  # pragma: no cover - write the corpus for a look
    import sys

    for p, _, e in write_corpus(Path(sys.argv[1])):
        print(p, json.dumps(e if isinstance(e, str) else len(e)))
