"""The verification gate against a real stack: a healthy one passes for every architecture, with the
counts the services report; a second feature-store read per request and a model fan-out other than the
one claimed are caught, with the architecture and the numbers in the problem; without metrics the
model calls are not counted, and that alone does not fail the gate."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from benchmark.verification import ARCHITECTURES, run_gate
from scoring_bench.core.features import entity_key
from tests.integration.conftest import Stack, stack_settings, start_stack

pytestmark = pytest.mark.integration

REQUESTS = 20


@pytest.fixture(scope="module")
def gate_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with start_stack(stack_settings(tmp_path_factory.mktemp("gate-stack"))) as running:
        yield running


def test_a_healthy_stack_passes_for_every_architecture(gate_stack: Stack) -> None:
    result = run_gate(gate_stack.settings, list(ARCHITECTURES), REQUESTS)
    assert result.passed, result.model_dump_json(indent=2)
    assert [row.architecture for row in result.rows] == list(ARCHITECTURES)
    for row in result.rows:
        assert row.valid_answers == row.requests == REQUESTS
        assert row.feature_store_reads == row.expected_reads == REQUESTS
        assert row.model_calls == row.expected_model_calls == REQUESTS * gate_stack.settings.num_models
    details = {row.detail for row in result.rows}
    assert len(details) == 1 and None not in details


def test_a_second_feature_store_read_per_request_is_caught(gate_stack: Stack) -> None:
    """The test plays a stack that reads the feature store twice: one more GET of a feature key
    after each request, inside the gate's window."""
    settings = gate_stack.settings
    store = redis.Redis.from_url(settings.feature_store_url)

    def read_again(_: str) -> None:
        store.get(entity_key(settings.redis_key_prefix, "1"))

    try:
        result = run_gate(settings, ["sync", "queue"], 10, on_request=read_again)
    finally:
        store.close()
    assert not result.passed
    for row in result.rows:
        assert row.feature_store_reads == 20
        assert f"{row.architecture}: 20 feature-store reads for 10 requests (expected 10)" in row.problems
        assert row.model_calls == 20 and row.valid_answers == 10  # the rest is right


def test_a_fan_out_other_than_the_one_claimed_is_caught(gate_stack: Stack) -> None:
    """The gate is told NUM_MODELS=3; the stack calls 2 models per request."""
    claimed = gate_stack.settings.model_copy(update={"num_models": 3})
    result = run_gate(claimed, ["async"], 10)
    assert not result.passed
    (row,) = result.rows
    assert row.model_calls == 20 and row.expected_model_calls == 30
    assert row.problems == ["async: 20 model calls for 10 requests (expected 30: NUM_MODELS=3 per request)"]


def test_without_metrics_the_model_calls_are_not_counted_and_not_judged(tmp_path: Path) -> None:
    with start_stack(stack_settings(tmp_path, metrics_enabled=False)) as stack:
        result = run_gate(stack.settings, ["sync", "queue"], 5)
    assert result.passed, result.model_dump_json(indent=2)
    for row in result.rows:
        assert row.model_calls is None and row.expected_model_calls == 10
        assert row.feature_store_reads == 5
