"""Storage of the service: migrations, transactions, parameterised SQL; SQLite and PostgreSQL."""

from __future__ import annotations

import threading

import pytest

pytest.importorskip("sqlalchemy")
pytest.importorskip("alembic")

from serving_helpers import Postgres, planted_frames, postgres_bindir, postgres_skip_reason
from sqlalchemy import inspect

from deepcuts.exceptions import DataError, DeepcutsError
from deepcuts.serving.store import Listen, Store, default_url


@pytest.fixture(scope="module")
def pg_url():
    reason = postgres_skip_reason()
    if reason:
        pytest.skip(reason)
    pytest.importorskip("psycopg")
    pg = Postgres(postgres_bindir())
    try:
        url = pg.start()
    except Exception as e:  # noqa: BLE001 - report why the server could not start
        pg.stop()
        pytest.fail(f"could not start a throwaway PostgreSQL cluster: {e}")
    yield url
    pg.stop()


_counter = iter(range(10_000))


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "sqlite":
        s = Store(default_url(tmp_path))
        yield s
        s.close()
    else:
        from sqlalchemy import create_engine, text

        base = request.getfixturevalue("pg_url")
        name = f"t{next(_counter)}"
        admin = create_engine(base, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(text(f"CREATE DATABASE {name}"))
        s = Store(base.rsplit("/", 1)[0] + "/" + name)
        yield s
        s.close()
        with admin.connect() as c:
            c.execute(text(f"DROP DATABASE {name}"))
        admin.dispose()


def test_migrations_create_every_table(store):
    assert store.revision() == "0001"
    tables = set(inspect(store.engine).get_table_names())
    assert {"users", "artists", "tracks", "listens", "play_counts", "models"} <= tables
    assert store.upgrade() == "0001"  # idempotent


def test_listens_are_stored_and_weighted_by_fraction(store):
    n = store.add_listens(
        [
            Listen("ann", "The Beatles", "Help!", 1_700_000_000, 1.0),
            Listen("ann", "Beatles, The", "Help!", 1_700_000_100, 0.25),
            Listen("ann", "Jay-Z feat. Beyoncé", None, None, None),
            Listen("bob", "Radiohead", "Reckoner", 1_700_000_000, 0.5),
        ]
    )
    assert n == 4
    assert store.history("ann") == {"beatles": 1.25, "jay-z": 1.0}
    assert store.history("nobody") is None
    c = store.counts()
    assert (c["users"], c["artists"], c["tracks"], c["listens"]) == (2, 3, 2, 4)
    x = store.interactions()
    assert x.shape == (2, 3)
    assert dict(zip(x.items["item"], x.items["name"]))["beatles"] == "The Beatles"


def test_a_bad_batch_stores_nothing(store):
    store.add_listens([Listen("ann", "Muse")])
    with pytest.raises(DataError, match="fraction"):
        store.add_listens([Listen("ann", "Muse"), Listen("ann", "Muse", fraction=1.5)])
    with pytest.raises(DataError, match="user"):
        store.add_listens([Listen("", "Muse")])
    assert store.count_listens() == 1


def test_values_never_become_sql(store):
    evil = "x'); DROP TABLE listens; --"
    store.add_listens([Listen(evil, evil, evil)])
    assert store.history(evil) is not None
    assert store.has_user(evil) and not store.has_user("x")
    assert "listens" in inspect(store.engine).get_table_names()
    assert store.count_listens(evil) == 1


def test_play_counts_and_model_registry(store):
    plays, artists = planted_frames()
    assert store.import_play_counts(plays, artists) == len(plays)
    store.import_play_counts(plays.head(1), artists)  # repeated pair: counts add up
    x = store.interactions()
    assert x.nnz == len(plays)
    first = plays.iloc[0]
    hist = store.history(first["user"])
    assert hist[first["item"]] == 2 * first["count"]
    tags = dict(zip(x.items["item"], x.items["tags"]))
    assert tags["artist 0"] == ["genre0", "music"]

    a = store.register_model("als", {"factors": 8})
    b = store.register_model("als", {"factors": 16})
    store.finish_model(a, path="/m/a", n_users=1, n_items=2, nnz=3)
    store.fail_model(b, "boom")
    assert store.active_model() is None
    store.activate_model(a)
    assert store.active_model()["id"] == a
    rows = {r["id"]: r for r in store.models()}
    assert rows[a]["status"] == "ready" and rows[a]["params"] == {"factors": 8}
    assert rows[b]["status"] == "failed" and rows[b]["error"] == "boom"


def test_concurrent_writers_lose_nothing(store):
    errors = []

    def client(k: int) -> None:
        try:
            for j in range(5):
                store.add_listens(
                    [Listen(f"user{k % 7}", f"Artist {j}", f"t{k}") for _ in range(3)]
                )
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert store.count_listens() == 20 * 5 * 3
    assert store.counts()["users"] == 7


def test_bad_urls_are_explained(tmp_path):
    with pytest.raises(DeepcutsError, match="not valid"):
        Store("not a url")
    with pytest.raises(DeepcutsError, match="not supported"):
        Store("mysql://u@h/db")
    with pytest.raises(DeepcutsError, match="no plays"):
        Store(default_url(tmp_path)).interactions()
