"""Personas through the service: with the default persona model (post-hoc personas), users with
two tastes get two personas, each with a distinct label."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("sqlalchemy")

from fastapi.testclient import TestClient
from serving_helpers import block_of, two_taste_frames

from deepcuts.serving.app import create_app
from deepcuts.serving.service import RecommenderService
from deepcuts.serving.store import Store, default_url

PERSONA_PARAMS = {
    "factors": 8,
    "iterations": 15,
    "reg_scaling": "none",
    "regularization": 0.1,
    "random_state": 0,
}


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("persona")
    store = Store(default_url(tmp))
    store.import_play_counts(*two_taste_frames())
    svc = RecommenderService(store, tmp, model="persona", model_params=PERSONA_PARAMS, seed=False)
    svc.start()
    with TestClient(create_app(svc)) as c:
        yield c


def _blocks(items):
    return {block_of(it["artist"]) for it in items}


def test_two_tastes_two_personas(client):
    body = client.get("/users/u5/personas", params={"n": 4}).json()  # blocks 0 and 1
    ps = body["personas"]
    assert len(ps) == 2
    assert abs(sum(p["share"] for p in ps) - 1) < 1e-6
    blocks = [_blocks(p["top_artists"]) for p in ps]
    assert all(len(b) == 1 for b in blocks) and blocks[0] != blocks[1]
    assert {next(iter(b)) for b in blocks} == {0, 1}
    assert all(p["label"] and p["tags"] for p in ps)
    assert len({p["label"] for p in ps}) == 2  # labels set the personas apart
    assert all(p["share"] >= 0.05 and p["n_artists"] >= 3 for p in ps)
    # a persona's recommendations come from its own taste
    for p, b in zip(ps, blocks):
        r = client.get("/users/u5/recommendations", params={"persona": p["persona"], "n": 1})
        assert r.status_code == 200, r.text
        assert _blocks(r.json()["items"]) == b
    r = client.get("/users/u5/recommendations", params={"persona": 2})
    assert r.status_code == 400 and "persona" in r.json()["error"]
    both = client.get("/users/u5/recommendations", params={"n": 2}).json()["items"]
    assert {it["persona"] for it in both} <= {0, 1}


def test_a_new_listener_folded_in_gets_personas(client):
    batch = [
        {"user": "mixed", "artist": f"Artist {a}", "fraction": 1.0}
        for a in (0, 1, 2, 3, 4, 20, 21, 22, 23, 24)
        for _ in range(3)
    ]
    assert client.post("/listens/batch", json={"listens": batch}).status_code == 201
    body = client.get("/users/mixed/personas", params={"n": 20}).json()
    assert body["source"] == "history"
    ps = body["personas"]
    assert len(ps) == 2  # fold_in gives this history two personas
    assert abs(sum(p["share"] for p in ps) - 1) < 1e-6
    # every played artist is credited to exactly one persona
    credited = [it["artist"] for p in ps for it in p["top_artists"]]
    assert sorted(credited) == sorted({x["artist"].lower() for x in batch})
    assert sum(p["n_artists"] for p in ps) == 10
    for p in (0, 1):
        r = client.get("/users/mixed/recommendations", params={"persona": p, "n": 3})
        assert r.status_code == 200, r.text
        assert {it["persona"] for it in r.json()["items"]} == {p}
