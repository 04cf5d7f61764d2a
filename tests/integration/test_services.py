"""The four services behind their real servers: health, predictions, agreement, and the bad input a
server handles before the app sees it (a body cut short, too large, empty). The apps' every answer,
error and dependency failure are tested in process, in tests/apps/."""

from __future__ import annotations

import math

import pytest

from scoring_bench.core.timing import parse_server_timing
from tests.integration.conftest import ALL_SERVICES, SCORING_SERVICES, SEED_BODY, Stack

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("name", ALL_SERVICES)
def test_healthcheck_is_ok(stack: Stack, name: str) -> None:
    resp = stack.http.get(stack.url(name, "/api/v1/healthcheck"), timeout=5)
    assert resp.status_code == 200
    body = resp.json()
    assert body["status"] == "OK"
    if name.startswith("scoring"):
        assert body["dependencies"] == {"feature_store": "OK", "model_api": "OK"}


@pytest.mark.parametrize("name", ALL_SERVICES)
def test_seed_request_gets_a_numeric_score(stack: Stack, name: str) -> None:
    resp = stack.post(name, SEED_BODY)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    detail = resp.json()["detail"]
    assert isinstance(detail, float) and 0.0 < detail < 1.0


@pytest.mark.parametrize("name", SCORING_SERVICES)
def test_scoring_sends_server_timing(stack: Stack, name: str) -> None:
    resp = stack.post(name, SEED_BODY)
    timing = parse_server_timing(resp.headers["Server-Timing"])
    if name == "scoring-batched":  # each model call after its wait for the batch (doc/batching.md)
        assert list(timing) == [
            "feature_store",
            "batch_wait_0",
            "model_0",
            "batch_wait_1",
            "model_1",
            "total",
        ]
    else:
        assert list(timing) == ["feature_store", "model_0", "model_1", "total"]
    assert all(math.isfinite(v) and v >= 0 for v in timing.values())
    assert timing["total"] >= timing["model_0"]


@pytest.mark.parametrize(
    "body",
    [SEED_BODY, {"entity_id": "42", "features": [0.5] * 30}, {"entity_id": "199", "features": [-3, 2]}],
)
def test_sync_and_async_handlers_agree(stack: Stack, body: object) -> None:
    sync = stack.post("scoring-sync", body).json()
    async_ = stack.post("scoring-async", body).json()
    assert sync["detail"] == async_["detail"]
    assert sync["scores"] == async_["scores"] and len(sync["scores"]) == 2


def test_models_agree_and_depend_on_model_id(stack: Stack) -> None:
    scores = {}
    for name in ("model-sync", "model-async"):
        for model_id in (0, 1):
            resp = stack.post(name, SEED_BODY, params={"model_id": model_id})
            assert resp.status_code == 200
            body = resp.json()
            assert body["model_time_ms"] >= 40.0
            scores[name, model_id] = body["detail"]
    assert scores["model-sync", 0] == scores["model-async", 0]
    assert scores["model-sync", 1] == scores["model-async", 1]
    assert scores["model-sync", 0] != scores["model-sync", 1]


def test_entities_change_the_score(stack: Stack) -> None:
    a = stack.post("scoring-async", {"entity_id": "1", "features": SEED_BODY}).json()
    b = stack.post("scoring-async", {"entity_id": "2", "features": SEED_BODY}).json()
    assert a["entity_id"] == "1" and b["entity_id"] == "2"
    assert a["detail"] != b["detail"]


BAD_BODIES = {
    "malformed": (b"[5.1, 3.5", 400),
    "empty_body": (b"", 422),
    "over_1_mib": (b"[" + b"1," * 600_000 + b"1]", 413),
}


@pytest.mark.parametrize("name", ALL_SERVICES)
@pytest.mark.parametrize("case", sorted(BAD_BODIES))
def test_bad_input_gets_a_4xx_json_error(stack: Stack, name: str, case: str) -> None:
    data, status = BAD_BODIES[case]
    resp = stack.post(name, data=data)
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["error"] and body["message"]


@pytest.mark.parametrize("name", ALL_SERVICES)
def test_wrong_method_and_unknown_path_get_json(stack: Stack, name: str) -> None:
    resp = stack.http.get(stack.url(name), timeout=5)
    assert resp.status_code == 405 and resp.json()["error"] == "method_not_allowed"
    resp = stack.http.get(stack.url(name, "/no/such/path"), timeout=5)
    assert resp.status_code == 404 and resp.json()["error"] == "not_found"


@pytest.mark.parametrize("name", ["model-async", "scoring-async"])
def test_fastapi_docs_are_served(stack: Stack, name: str) -> None:
    assert stack.http.get(stack.url(name, "/docs"), timeout=5).status_code == 200
    spec = stack.http.get(stack.url(name, "/openapi.json"), timeout=5).json()
    path = spec["paths"]["/api/v1/ml/async/predict"]["post"]
    assert "requestBody" in path


@pytest.mark.parametrize("name", ALL_SERVICES)
def test_huge_finite_numbers_are_scored_not_a_500(stack: Stack, name: str) -> None:
    resp = stack.post(name, [1.7e308, -1.7e308, 5e-324] * 100)
    assert resp.status_code == 200, resp.text
    assert 0.0 <= resp.json()["detail"] <= 1.0
