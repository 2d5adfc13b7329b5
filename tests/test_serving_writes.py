"""The single-listen write path (issue 13): cached artist normalisation, group commit answers,
and the fast ``POST /listens`` in front of the framework's layers."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

pytest.importorskip("sqlalchemy")
pytest.importorskip("fastapi")

from deepcuts.data.artists import normalize_artists
from deepcuts.serving._writes import GroupCommit
from deepcuts.serving.store import Listen, Store, default_url

NAMES = ["The Beatles", "beatles", "Beatles feat. X", "Björk", "BJÖRK ", "Cam Feat. Anggun",
         "Sigur Rós", "sigur ros", "AC/DC", "ＡＢＢＡ"]  # fmt: skip


def _artists(path):
    con = sqlite3.connect(path / "deepcuts.sqlite3")
    rows = con.execute(
        "SELECT a.key, a.name, l.listened_at FROM listens l JOIN artists a ON a.id = l.artist_id"
    ).fetchall()
    con.close()
    return rows


@pytest.mark.parametrize("one_by_one", [False, True])
def test_stored_artists_match_normalize_artists(tmp_path, one_by_one):
    """The write path's cached primary credit stores what ``normalize_artists`` gives: same
    key per listen, and for a new artist the display name of the last raw name (sorted) of the
    group with that key, as before the cache."""
    store = Store(default_url(tmp_path))
    listens = [Listen("u", a, None, i, None) for i, a in enumerate(NAMES)]
    if one_by_one:
        for x in listens:
            store.add_listens([x])
    else:
        store.add_listens(listens)
    store.close()
    got = {t: (k, n) for k, n, t in _artists(tmp_path)}
    norm = normalize_artists(NAMES, credit="primary")
    assert [got[i][0] for i in range(len(NAMES))] == norm["key"].tolist()
    if not one_by_one:
        raw = sorted(set(NAMES))
        first = normalize_artists(raw).drop_duplicates("row")
        expect = dict(zip(first["key"], first["display"]))
        assert {k: n for k, n in got.values()} == expect
    else:  # one at a time: the first listen of a key names the artist
        first_name = {}
        for k, d in zip(norm["key"], norm["display"]):
            first_name.setdefault(k, d)
        assert {k: n for k, n in got.values()} == first_name


def test_group_commit_answers_each_request_and_survives_a_closed_loop():
    """Answers are handed to each event loop once per group; a loop that closed while its
    listen was written does not stop the writer (later requests are still answered)."""
    groups = []
    gc = GroupCommit(lambda ls: groups.append(len(ls)) or len(ls))
    try:

        async def many(n):
            return await asyncio.gather(*(gc.submit(Listen("u", "a", None, i)) for i in range(n)))

        assert asyncio.run(many(50)) == [1] * 50
        assert sum(groups) == 50 and gc.groups == len(groups)
        # a loop closed before its answer arrives: the writer thread must live on
        loop = asyncio.new_event_loop()
        fut = loop.create_future()
        loop.close()
        with gc._wake:
            gc._queue.append((Listen("u", "a", None, 99), loop, fut))
            gc._wake.notify()

        async def bounded():
            return await asyncio.wait_for(many(3), 10)

        assert asyncio.run(bounded()) == [1, 1, 1]
        assert gc._thread.is_alive()
    finally:
        gc.close()
