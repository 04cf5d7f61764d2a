"""The minimal async control (api_scoring_minimal): started only when asked, the async handler's contract
(same fields, same score for the same input, JSON errors), stopped with the stack."""

from __future__ import annotations

from pathlib import Path

import psutil

from scoring_bench.core.endpoints import HEALTH_PATH
from tests.integration.conftest import SEED_BODY, free_port, stack_settings, start_stack

CONTROL = "scoring-minimal"


def test_the_control_answers_the_async_contract_and_is_stopped(tmp_path: Path) -> None:
    settings = stack_settings(tmp_path, minimal_control=True, scoring_minimal_port=free_port())
    with start_stack(settings) as stack:
        pid = stack.pid(CONTROL)
        for body in ({"entity_id": "7", "features": SEED_BODY}, SEED_BODY):
            product, control = stack.post("scoring-async", body), stack.post(CONTROL, body)
            assert product.status_code == control.status_code == 200
            assert product.json() == control.json()  # detail, entity_id, scores: the same answer
            assert "server-timing" not in control.headers
        health = stack.http.get(stack.url(CONTROL, HEALTH_PATH), timeout=5)
        product_health = stack.http.get(stack.url("scoring-async", HEALTH_PATH), timeout=5)
        assert health.status_code == 200 and health.json() == product_health.json()
        for bad, status in ((b"{not json", 400), (b'{"features": "x"}', 422), (b'["a", 1]', 422)):
            answer = stack.post(CONTROL, data=bad)
            assert answer.status_code == status and "error" in answer.json()
        unknown = stack.post(CONTROL, {"entity_id": "no-such-entity", "features": SEED_BODY})
        assert (
            unknown.status_code
            == stack.post("scoring-async", {"entity_id": "no-such-entity", "features": SEED_BODY}).status_code
            == 404
        )
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
