from __future__ import annotations

import pytest

from scoring_bench.core import features as fs
from scoring_bench.core.errors import ModelUnavailable, UnknownEntity
from scoring_bench.core.scoring import aggregate, parse_model_response, response_body
from scoring_bench.core.timing import Timings, parse_server_timing


def test_keys_live_under_the_prefix() -> None:
    assert fs.entity_key("p:", "42") == "p:features:42"
    assert fs.meta_key("p:").startswith("p:")


def test_stored_features_are_deterministic_and_round_trip() -> None:
    a = fs.stored_features("7", 8)
    assert a == fs.stored_features("7", 8) and a != fs.stored_features("8", 8)
    assert fs.decode("7", fs.encode(a)) == a
    with pytest.raises(UnknownEntity):
        fs.decode("nope", None)


def test_combine_keeps_the_request_length() -> None:
    assert fs.combine([1.0, 2.0, 3.0], [0.5, -0.5]) == [1.5, 1.5, 3.5]


def test_aggregate_and_body() -> None:
    assert aggregate([0.25, 0.75]) == 0.5
    body = response_body("1", [0.2, 0.4])
    assert body["entity_id"] == "1" and body["scores"] == [0.2, 0.4]


@pytest.mark.parametrize(
    "status, body",
    [
        (500, b'{"detail": 0.5}'),
        (200, b"not json"),
        (200, b'{"x": 1}'),
        (200, b'{"detail": "0.5"}'),
        (200, b'{"detail": true}'),
    ],
)
def test_a_model_answer_that_is_not_a_score_is_a_502(status: int, body: bytes) -> None:
    with pytest.raises(ModelUnavailable) as exc:
        parse_model_response(status, body, 1)
    assert exc.value.status == 502


def test_model_answer() -> None:
    assert parse_model_response(200, b'{"detail": 0.25, "model_time_ms": 41}', 0) == 0.25


def test_server_timing_round_trips() -> None:
    timings = Timings()
    timings.steps = {"feature_store": 0.5, "model_0": 45.25}
    parsed = parse_server_timing(timings.header())
    assert list(parsed) == ["feature_store", "model_0", "total"]
    assert parsed["model_0"] == 45.25 and parsed["total"] >= 0
