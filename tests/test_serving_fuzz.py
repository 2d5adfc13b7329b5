"""Schema fuzzing (issue 13): Schemathesis generates requests for every operation of the
OpenAPI spec, retrain included (with the token), and checks each answer: no 5xx, a status the
spec lists, the documented content type and body schema. Bounded examples per operation, on
SQLite and on a real PostgreSQL."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("sqlalchemy")
pytest.importorskip("schemathesis")

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)
from serving_helpers import Postgres, planted_frames, postgres_bindir, postgres_skip_reason

from deepcuts.serving._security import Security
from deepcuts.serving.app import create_app
from deepcuts.serving.service import RecommenderService
from deepcuts.serving.store import Store, default_url

TOKEN = "fuzz-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
#: examples per operation and back-end (~15 s per back-end on two cores)
EXAMPLES = 15


def _app(url, data_dir):
    store = Store(url)
    store.import_play_counts(*planted_frames())
    svc = RecommenderService(
        store,
        data_dir,
        model="popularity",  # retrains in the fuzz finish in milliseconds
        seed=False,
        retrain_in="thread",
    )
    svc.start()
    # the Host check stays on; "testserver" is the in-process client's host name
    sec = Security(token=TOKEN, allowed_hosts=("127.0.0.1", "localhost", "testserver"))
    return create_app(svc, max_upload=64 * 1024, security=sec), svc


def _fuzz_operation(op, svc, seen: dict) -> None:
    key = f"{op.method.upper()} {op.path}"

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        derandomize=True,
    )
    @given(case=op.as_strategy())
    def run(case):
        r = case.call_and_validate(headers=AUTH, checks=CHECKS)
        seen.setdefault(key, set()).add(r.status_code)
        svc.wait(30)  # a started retrain finishes before the next case

    run()


def _fuzz(app, svc) -> dict:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    seen: dict = {}
    ops = [result.ok() for result in schema.get_all_operations()]
    assert len(ops) >= 12
    for op in ops:
        _fuzz_operation(op, svc, seen)
    return seen


def test_fuzz_every_operation_on_sqlite(tmp_path):
    app, svc = _app(default_url(tmp_path), tmp_path)
    seen = _fuzz(app, svc)
    assert not any(s >= 500 for codes in seen.values() for s in codes)
    assert 202 in seen["POST /retrain"] and 201 in seen["POST /listens"]  # writes got through
    assert 200 in seen["GET /users/{user}/recommendations"]


@pytest.mark.slow
def test_fuzz_every_operation_on_postgresql(tmp_path):
    reason = postgres_skip_reason()
    if reason:
        pytest.skip(reason)
    pg = Postgres(postgres_bindir())
    try:
        app, svc = _app(pg.start(), tmp_path)
        seen = _fuzz(app, svc)
        assert not any(s >= 500 for codes in seen.values() for s in codes)
        svc.store.close()
    finally:
        pg.stop()
