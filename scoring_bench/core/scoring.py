"""Aggregation of model scores into the scoring handler's answer."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import orjson

from scoring_bench.core.errors import ModelUnavailable


def aggregate(scores: Sequence[float]) -> float:
    """The handler's ``detail``: the mean of the model scores (order-independent)."""
    return math.fsum(scores) / len(scores)


def response_body(entity_id: str, scores: Sequence[float]) -> dict[str, Any]:
    return {"detail": aggregate(scores), "entity_id": entity_id, "scores": list(scores)}


def model_body(score: float, model_time_ms: float) -> dict[str, Any]:
    return {"detail": score, "model_time_ms": round(model_time_ms, 3)}


def model_batch_body(scores: Sequence[float], model_time_ms: float) -> dict[str, Any]:
    """A model API's batch answer: one score per item, in item order, and the one latency it waited."""
    return {"detail": list(scores), "model_time_ms": round(model_time_ms, 3)}


def parse_model_batch_response(status: int, body: bytes, model_id: int, size: int) -> list[float]:
    """A model API's batch answer: ``size`` scores, or ModelUnavailable."""
    if status != 200:
        raise ModelUnavailable(f"model {model_id} answered HTTP {status} to a batch: {body[:200]!r}")
    try:
        values = orjson.loads(body)["detail"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        raise ModelUnavailable(f"model {model_id} sent an unreadable batch answer: {body[:200]!r}") from None
    if not isinstance(values, list) or len(values) != size:
        raise ModelUnavailable(f"model {model_id} did not send {size} scores for a batch of {size}")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        raise ModelUnavailable(f"model {model_id} sent a non-numeric score in a batch")
    return [float(v) for v in values]


def parse_model_response(status: int, body: bytes, model_id: int) -> float:
    """A model API's answer, or ModelUnavailable when it is not a score."""
    if status != 200:
        raise ModelUnavailable(f"model {model_id} answered HTTP {status}: {body[:200]!r}")
    try:
        value = orjson.loads(body)["detail"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        raise ModelUnavailable(f"model {model_id} sent an unreadable answer: {body[:200]!r}") from None
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise ModelUnavailable(f"model {model_id} sent a non-numeric score: {value!r}")
    return float(value)
