"""Every service serves its OpenAPI document at /openapi.json, and what it answers conforms to it:
the good answers, the bad-input errors and a dependency that is down (schemathesis validates each
response against the document the app served)."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
import schemathesis
from starlette.requests import Request

from scoring_bench.core.endpoints import (
    HEALTH_PATH,
    OPENAPI_PATH,
    QUEUE_PREDICT_PATH,
    QUEUE_TASKS_PATH,
    batch_path,
)
from scoring_bench.core.errors import InvalidBody
from scoring_bench.core.openapi import TASK_PATH
from scoring_bench.service.fastapi_adapter import read_body
from tests.apps.conftest import APPS, CLOSED_PORT_URL, SEED_BODY

BODIES = [SEED_BODY, b"[5.1, 3.5", b"", b"[]", b"[NaN]", b'["x"]', b"null", b"[" + b"1," * 600_000 + b"1]"]
TWINS = [("model-sync", "model-async"), ("scoring-sync", "scoring-async")]


def contract(app: Any) -> Any:
    answer = app.get(OPENAPI_PATH)
    assert answer.status == 200
    return answer.body


def conforms(app: Any, method: str, path: str, template: str, data: Any = None) -> Any:
    """Send one request; the response must conform to the operation ``template`` of the app's
    document (status documented, body and headers as documented)."""
    raw = data if data is None or isinstance(data, bytes) else orjson.dumps(data)
    resp = app.response(method, path, raw)
    document = contract(app)
    assert str(resp.status_code) in document["paths"][template][method.lower()]["responses"], resp.status_code
    schemathesis.openapi.from_dict(document)[template][method].validate_response(resp)
    return resp


@pytest.mark.parametrize("name", list(APPS))
def test_every_service_publishes_its_contract(client: Any, name: str) -> None:
    app = client(name)
    document = contract(app)
    assert document["openapi"].startswith("3.1")
    assert app.predict_path in document["paths"] and HEALTH_PATH in document["paths"]
    assert app.get("/").body["openapi"] == OPENAPI_PATH


@pytest.mark.parametrize("sync, asynchronous", TWINS)
def test_the_flask_and_fastapi_twins_serve_the_same_contract(
    client: Any, sync: str, asynchronous: str
) -> None:
    first, second = client(sync), client(asynchronous)
    a, b = contract(first), contract(second)
    assert a["paths"][first.predict_path] == b["paths"][second.predict_path]
    if sync.startswith("model"):
        assert a["paths"][batch_path(first.predict_path)] == b["paths"][batch_path(second.predict_path)]
    assert a["paths"][HEALTH_PATH] == b["paths"][HEALTH_PATH]
    assert a["components"] == b["components"]


@pytest.mark.parametrize(
    "name", ["model-sync", "model-async", "scoring-sync", "scoring-async", "scoring-batched"]
)
@pytest.mark.parametrize("body", range(len(BODIES)))
def test_answers_and_errors_conform(client: Any, name: str, body: int) -> None:
    app = client(name)
    conforms(app, "POST", app.predict_path, app.predict_path, BODIES[body])
    conforms(app, "GET", HEALTH_PATH, HEALTH_PATH)


BATCH_BODIES = [
    [SEED_BODY, [1.0]],
    [],
    [SEED_BODY] * 4,  # over the cap the test sets (MODEL_MAX_BATCH=3)
    SEED_BODY,
    [[]],
    [["x"]],
    b"[[1], [2]",
    b"",
    b"[[" + b"1," * 600_000 + b"1]]",
]


@pytest.mark.parametrize("name", ["model-sync", "model-async"])
@pytest.mark.parametrize("body", range(len(BATCH_BODIES)))
def test_batch_answers_and_errors_conform(client: Any, name: str, body: int) -> None:
    app = client(name, model_max_batch=3, batch_max_size=3)
    path = batch_path(app.predict_path)
    resp = conforms(app, "POST", f"{path}?model_id=1", path, BATCH_BODIES[body])
    assert (resp.status_code == 200) == (body == 0), resp.text


@pytest.mark.parametrize("name", ["model-sync", "model-async"])
@pytest.mark.parametrize("model_id", ["3", "abc", "-1", "10000", "1.5"])
def test_a_model_id_conforms(client: Any, name: str, model_id: str) -> None:
    app = client(name)
    conforms(app, "POST", f"{app.predict_path}?model_id={model_id}", app.predict_path, SEED_BODY)


@pytest.mark.parametrize("name", ["scoring-sync", "scoring-async", "scoring-batched"])
def test_dependency_errors_conform(client: Any, redis_url: str, name: str) -> None:
    unknown = client(name)
    resp = conforms(
        unknown, "POST", unknown.predict_path, unknown.predict_path, {"entity_id": "x", "features": [1]}
    )
    assert resp.status_code == 404
    no_model = client(name, model_sync_url=CLOSED_PORT_URL, model_async_url=CLOSED_PORT_URL)
    assert (
        conforms(no_model, "POST", no_model.predict_path, no_model.predict_path, SEED_BODY).status_code == 502
    )
    assert conforms(no_model, "GET", HEALTH_PATH, HEALTH_PATH).status_code == 503
    no_store = client(name, redis_url="redis://127.0.0.1:9/0")
    assert (
        conforms(no_store, "POST", no_store.predict_path, no_store.predict_path, SEED_BODY).status_code == 503
    )


def test_the_queue_answers_conform(client: Any, redis_url: str) -> None:
    down = client("scoring-queue")  # broker and result store on a closed port
    assert conforms(down, "POST", QUEUE_PREDICT_PATH, QUEUE_PREDICT_PATH, SEED_BODY).status_code == 503
    task = f"{QUEUE_TASKS_PATH}/00000000-0000-4000-8000-000000000000"
    assert conforms(down, "GET", task, TASK_PATH).status_code == 503
    assert conforms(down, "GET", HEALTH_PATH, HEALTH_PATH).status_code == 503
    queue = client("scoring-queue", result_backend_url=redis_url)
    for path, status in [
        (task, 404),
        (f"{QUEUE_TASKS_PATH}/not-a-task", 404),
        (f"{QUEUE_TASKS_PATH}/a%2Fb", 404),
        (f"{task}?wait_ms=abc", 422),
    ]:
        assert conforms(queue, "GET", path, TASK_PATH).status_code == status, path
    for query in ["wait_ms=-1", "callback_url=http://203.0.113.7/", "callback_url=http://localhost/%20x y"]:
        resp = conforms(queue, "POST", f"{QUEUE_PREDICT_PATH}?{query}", QUEUE_PREDICT_PATH, SEED_BODY)
        assert resp.status_code == 422, query


@pytest.mark.parametrize("name", ["model-sync", "model-async"])
def test_a_model_id_of_unicode_digits_is_a_422(client: Any, name: str) -> None:
    app = client(name)
    resp = conforms(app, "POST", f"{app.predict_path}?model_id=%C2%B2", app.predict_path, SEED_BODY)
    assert resp.status_code == 422


def test_a_content_length_of_unicode_digits_is_a_422() -> None:
    """The FastAPI services read Content-Length themselves: "²" passed str.isdigit() and made a
    500 (uvicorn's parser refuses such a header before the app; the check must not rely on it)."""

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"[1]", "more_body": False}

    scope = {"type": "http", "method": "POST", "path": "/", "headers": [(b"content-length", b"\xb2")]}
    with pytest.raises(InvalidBody):
        asyncio.run(read_body(Request(scope, receive), 1000))
