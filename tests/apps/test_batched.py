"""Batching in process (doc/batching.md): the model APIs' batch routes score each item as the single route
does, and the batching handler answers what the async handler answers, with its batch wait and size."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from scoring_bench.core.endpoints import batch_path
from scoring_bench.core.timing import parse_server_timing, parse_server_timing_notes
from tests.apps.conftest import CLOSED_PORT_URL, SEED_BODY

MODELS = ["model-sync", "model-async"]
ITEMS = [SEED_BODY, [0.5] * 30, [-3.0, 2.0], [1e300, -1e300, 7.0], [0.0]]


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("model_id", [0, 3])
def test_a_batch_scores_each_item_as_its_single_call(client: Any, name: str, model_id: int) -> None:
    app = client(name, model_latency_fixed_ms=2.0, model_batch_per_item_ms=0.5)
    batch = app.post(ITEMS, path=batch_path(app.predict_path), model_id=model_id)
    assert batch.status == 200, batch.body
    singles = [app.post(item, model_id=model_id).body["detail"] for item in ITEMS]
    assert batch.body["detail"] == singles
    assert batch.body["model_time_ms"] == 2.0 + 0.5 * len(ITEMS)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize(
    "data, status, code",
    [
        (b"[]", 422, "invalid_body"),
        (b"[[1], [2], [3], [4]]", 422, "batch_too_large"),
        (b"[1, 2]", 422, "invalid_body"),
        (b'[["1"]]', 422, "invalid_body"),
        (b"[[1], null]", 422, "invalid_body"),
        (b"{}", 422, "invalid_body"),
        (b"[[1]", 400, "invalid_json"),
    ],
)
def test_a_bad_batch_is_a_clear_4xx(client: Any, name: str, data: bytes, status: int, code: str) -> None:
    app = client(name, model_max_batch=3, batch_max_size=3)
    answer = app.post(data=data, path=batch_path(app.predict_path))
    assert answer.status == status and answer.body["error"] == code, answer.body
    assert answer.body["message"]


@pytest.mark.parametrize(
    "body", [SEED_BODY, {"entity_id": "42", "features": [0.5] * 30}, {"entity_id": "49", "features": [-3, 2]}]
)
def test_the_batching_handler_answers_as_the_async_one(client: Any, body: Any) -> None:
    for num_models in (2, 4):
        answer = client("scoring-batched", num_models=num_models).post(body)
        assert answer.status == 200, answer.body
        assert answer.body == client("scoring-async", num_models=num_models).post(body).body


def test_its_server_timing_has_each_models_batch_wait_and_size(client: Any) -> None:
    answer = client("scoring-batched").post(SEED_BODY)
    header = answer.headers["Server-Timing"]
    assert list(parse_server_timing(header)) == [
        "feature_store",
        "batch_wait_0",
        "model_0",
        "batch_wait_1",
        "model_1",
        "total",
    ]
    assert parse_server_timing_notes(header) == {"batch_size_0": "1", "batch_size_1": "1"}


def test_concurrent_requests_ride_in_one_batch(client: Any) -> None:
    """Requests sent together wait for each other up to the max wait (here long: they all arrive within
    it), so a batch carries more than one; every answer is still its own entity's."""
    app = client("scoring-batched", batch_max_size=4, batch_max_wait_ms=2_000.0)
    bodies = [{"entity_id": str(i), "features": SEED_BODY} for i in range(8)]
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(app.post, bodies))
    reference = client("scoring-async")
    for body, answer in zip(bodies, answers):
        assert answer.status == 200 and answer.body == reference.post(body).body
    sizes = [int(v) for a in answers for v in parse_server_timing_notes(a.headers["Server-Timing"]).values()]
    assert max(sizes) > 1 and max(sizes) <= 4


def test_a_model_api_that_is_down_fails_the_batch_with_a_502(client: Any) -> None:
    app = client("scoring-batched", model_async_url=CLOSED_PORT_URL)
    answer = app.post(SEED_BODY)
    assert answer.status == 502 and answer.body["error"] == "model_unavailable"
    assert app.get("/api/v1/healthcheck").status == 503
