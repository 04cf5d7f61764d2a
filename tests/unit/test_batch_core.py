"""The pure pieces of batching (doc/batching.md): a model API's batch body and answer, the latency of a
batch, the batch route's URL, the settings' limits and the batch notes of Server-Timing."""

from __future__ import annotations

import orjson
import pytest
from pydantic import ValidationError

from scoring_bench.core.endpoints import ASYNC_PREDICT_PATH, batch_path, batch_url
from scoring_bench.core.errors import BatchTooLarge, InvalidBody, InvalidJSON, ModelUnavailable, ScoringError
from scoring_bench.core.model import LatencySampler
from scoring_bench.core.schemas import RequestParser
from scoring_bench.core.scoring import model_batch_body, parse_model_batch_response
from scoring_bench.core.settings import Settings
from scoring_bench.core.timing import (
    Timings,
    batch_size_note,
    batch_wait_step,
    parse_server_timing,
    parse_server_timing_notes,
)

PARSER = RequestParser(max_features=4, max_body_bytes=1 << 10, max_batch=3)


def test_a_batch_body_is_a_list_of_feature_vectors() -> None:
    assert PARSER.feature_batch(b"[[1, 2.5], [3]]") == [(1.0, 2.5), (3.0,)]


@pytest.mark.parametrize(
    "body, error, where",
    [
        (b"[]", InvalidBody, "empty"),
        (b"", InvalidBody, "empty"),
        (b"[[1], [2], [3], [4]]", BatchTooLarge, "MODEL_MAX_BATCH"),
        (b"[1, 2]", InvalidBody, "valid list"),
        (b'[["1"]]', InvalidBody, "valid number"),
        (b"[[true]]", InvalidBody, "valid number"),
        (b"[[]]", InvalidBody, "at least 1"),
        (b"[[1, 2, 3, 4, 5]]", InvalidBody, "at most 4"),
        (b'{"a": [1]}', InvalidBody, "got an object"),
        (b"[[NaN]]", InvalidJSON, "not valid JSON"),
        (b"[[1], [2]", InvalidJSON, "not valid JSON"),
    ],
)
def test_a_bad_batch_is_a_clear_4xx(body: bytes, error: type[ScoringError], where: str) -> None:
    with pytest.raises(error) as caught:
        PARSER.feature_batch(body)
    assert 400 <= caught.value.status < 500 and where in caught.value.message
    assert caught.value.body()["error"] == error.code


def test_the_cap_is_counted_before_the_items_are_validated() -> None:
    with pytest.raises(BatchTooLarge):
        PARSER.feature_batch(b'[["x"], ["y"], ["z"], ["w"]]')


def test_a_batch_waits_one_draw_plus_its_items() -> None:
    settings = Settings(model_latency="fixed", model_latency_fixed_ms=40.0, model_batch_per_item_ms=0.5)
    sampler = LatencySampler(settings)
    assert sampler.draw_batch_ms(1) == 40.5
    assert sampler.draw_batch_ms(32) == 56.0
    capped = Settings(model_latency="fixed", model_latency_fixed_ms=40.0, model_latency_cap_ms=50.0)
    assert LatencySampler(capped).draw_batch_ms(100) == 50.0


def test_a_batch_draws_from_the_configured_distribution() -> None:
    settings = Settings(model_latency_seed=3, model_batch_per_item_ms=2.0)
    single, batch = LatencySampler(settings), LatencySampler(settings)
    assert [batch.draw_batch_ms(5) for _ in range(5)] == [single.draw_ms() + 10.0 for _ in range(5)]


def test_the_batch_route_sits_beside_the_predict_route() -> None:
    assert batch_path(ASYNC_PREDICT_PATH) == "/api/v1/ml/async/predict_batch"
    assert batch_url("http://h:8000/api/v1/ml/async/predict?x=1") == (
        "http://h:8000/api/v1/ml/async/predict_batch?x=1"
    )


def test_a_batch_answer_is_read_back() -> None:
    body = orjson.dumps(model_batch_body([0.25, 0.5], 41.23456))
    assert parse_model_batch_response(200, body, 0, 2) == [0.25, 0.5]
    assert orjson.loads(body)["model_time_ms"] == 41.235


@pytest.mark.parametrize(
    "status, body",
    [
        (500, b"{}"),
        (200, b"nope"),
        (200, b'{"detail": 0.5}'),
        (200, b'{"detail": [0.5]}'),  # one score for two items
        (200, b'{"detail": [0.5, "x"]}'),
        (200, b'{"detail": [0.5, true]}'),
    ],
)
def test_a_bad_batch_answer_is_a_model_unavailable(status: int, body: bytes) -> None:
    with pytest.raises(ModelUnavailable):
        parse_model_batch_response(status, body, 1, 2)


def test_the_batch_size_cannot_exceed_what_a_model_api_accepts() -> None:
    with pytest.raises(ValidationError, match="BATCH_MAX_SIZE"):
        Settings(batch_max_size=300, model_max_batch=256)
    assert Settings(batch_max_size=256, model_max_batch=256).batch_max_size == 256


def test_server_timing_carries_the_batch_wait_and_size() -> None:
    timings = Timings()
    timings.steps[batch_wait_step(0)] = 1.5
    timings.steps["model_0"] = 45.0
    timings.notes[batch_size_note(0)] = "7"
    header = timings.header()
    assert "batch_size_0;desc=7" in header
    assert parse_server_timing(header).keys() == {"batch_wait_0", "model_0", "total"}  # no size as a duration
    assert parse_server_timing_notes(header) == {"batch_size_0": "7"}
