"""Request validation: what a model API and a scoring handler accept.

The body is parsed once with pydantic-core's JSON parser (NaN and Infinity
literals refused), then validated by pydantic; no handler calls ``json.loads``
on untrusted input.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import pydantic_core
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
)
from pydantic.json_schema import SkipJsonSchema

from scoring_bench.core.errors import (
    BatchTooLarge,
    ErrorBody,
    InvalidBody,
    InvalidJSON,
    PayloadTooLarge,
    from_validation_error,
)
from scoring_bench.core.tasks import TASK_ID_PATTERN

# Strict: "5.1" and true are type errors, not numbers; 1e999 (infinite) is refused. The published
# schema says what a double holds (a JSON number has no limit): the largest double, written as the
# exact integer it is, so that a validator comparing exactly and this check agree on every number.
# The check runs on the number as parsed, before it becomes a float: an integer just beyond the
# bound would round to the largest double and pass a check on the float (make fuzz found that).
MAX_FEATURE = int(sys.float_info.max)


def _within_a_double(value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool) and abs(value) > MAX_FEATURE:
        raise ValueError("must be a number a double holds (at most about 1.8e308 either way)")
    return value


Feature = Annotated[
    float,
    Field(
        strict=True, allow_inf_nan=False, json_schema_extra={"minimum": -MAX_FEATURE, "maximum": MAX_FEATURE}
    ),
    BeforeValidator(_within_a_double),
]
EntityId = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:\-]+$")]

ARRAY_HINT = "expected a JSON array of numbers"
BATCH_HINT = "expected a JSON array of feature vectors (arrays of numbers)"
SHAPE_HINT = 'expected a JSON array of numbers or an object {"entity_id": ..., "features": [...]}'


@dataclass(frozen=True)
class ScoreRequest:
    """A validated scoring request; ``entity_id`` None means the default entity."""

    entity_id: str | None
    features: tuple[float, ...]


class RequestParser:
    """Validates request bodies; built once per process from the settings."""

    def __init__(self, max_features: int, max_body_bytes: int, max_batch: int = 1) -> None:
        features = Annotated[list[Feature], Field(min_length=1, max_length=max_features)]
        batch = Annotated[list[features], Field(min_length=1, max_length=max_batch)]

        class EntityRequest(BaseModel):
            model_config = ConfigDict(extra="forbid")
            entity_id: EntityId
            features: features

        self.max_body_bytes = max_body_bytes
        self.features_adapter: TypeAdapter[list[float]] = TypeAdapter(features)
        self.max_batch = max_batch
        self.batch_adapter: TypeAdapter[list[list[float]]] = TypeAdapter(batch)
        self.entity_request_model = EntityRequest

    def scoring_json_schema(self) -> dict[str, Any]:
        """The JSON schema of a scoring handler's body (for OpenAPI): either shape."""
        return {"anyOf": [self.features_adapter.json_schema(), self.entity_request_model.model_json_schema()]}

    def _load(self, body: bytes, hint: str) -> Any:
        if len(body) > self.max_body_bytes:
            raise PayloadTooLarge(f"the body is larger than {self.max_body_bytes} bytes")
        if not body.strip():
            raise InvalidBody("the body is empty: " + hint)
        try:
            return pydantic_core.from_json(body, allow_inf_nan=False)
        except ValueError as exc:
            raise InvalidJSON(f"the body is not valid JSON: {exc}") from None

    def _features(self, value: Any) -> tuple[float, ...]:
        try:
            return tuple(self.features_adapter.validate_python(value))
        except ValidationError as exc:
            raise from_validation_error(exc) from None

    def features(self, body: bytes) -> tuple[float, ...]:
        """A model API's body: a JSON array of numbers."""
        value = self._load(body, ARRAY_HINT)
        if not isinstance(value, list):
            raise InvalidBody(ARRAY_HINT + ", got " + _json_type(value))
        return self._features(value)

    def feature_batch(self, body: bytes) -> list[tuple[float, ...]]:
        """A model API's batch body: a JSON array of 1 to ``max_batch`` feature vectors (MODEL_MAX_BATCH:
        beyond it 422 batch_too_large, counted before any item is validated)."""
        value = self._load(body, BATCH_HINT)
        if not isinstance(value, list):
            raise InvalidBody(BATCH_HINT + ", got " + _json_type(value))
        if not value:
            raise InvalidBody("the batch is empty: " + BATCH_HINT)
        if len(value) > self.max_batch:
            raise BatchTooLarge(
                f"the batch has {len(value)} items, more than {self.max_batch} (MODEL_MAX_BATCH)",
                [{"loc": [], "msg": f"at most {self.max_batch} items", "type": "too_long"}],
            )
        try:
            return [tuple(item) for item in self.batch_adapter.validate_python(value)]
        except ValidationError as exc:
            raise from_validation_error(exc) from None

    def scoring(self, body: bytes) -> ScoreRequest:
        """A scoring handler's body: a bare array, or ``{"entity_id", "features"}``."""
        value = self._load(body, SHAPE_HINT)
        if isinstance(value, list):
            return ScoreRequest(None, self._features(value))
        if isinstance(value, dict):
            try:
                parsed = self.entity_request_model.model_validate(value)
            except ValidationError as exc:
                raise from_validation_error(exc) from None
            return ScoreRequest(parsed.entity_id, tuple(parsed.features))
        raise InvalidBody(SHAPE_HINT + ", got " + _json_type(value))


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", str: "a string", int: "a number", float: "a number"}.get(
        type(value), "an object"
    )


def parse_model_id(value: str | None) -> int:
    """The ``model_id`` query parameter of a model API (default 0)."""
    if value is None:
        return 0
    # isascii: str.isdigit() is also true of digits int() cannot read ("²"), which made a 500.
    if not (value.isascii() and value.isdigit()) or len(value) > 4:
        raise InvalidBody(f"model_id must be an integer from 0 to 9999, got {value!r}")
    return int(value)


# What the services answer: the bodies their handlers build (core.scoring, core.tasks,
# core.health), as published in each service's OpenAPI document (core.openapi).
class ModelAnswer(BaseModel):
    """A model API's answer."""

    model_config = ConfigDict(extra="forbid")
    detail: float = Field(ge=0.0, le=1.0, description="The model's score, a probability.")
    model_time_ms: float = Field(ge=0.0, description="The simulated latency it waited (or burned).")


class ModelBatchAnswer(BaseModel):
    """A model API's answer to a batch."""

    model_config = ConfigDict(extra="forbid")
    detail: list[Annotated[float, Field(ge=0.0, le=1.0)]] = Field(
        min_length=1, description="One score per item, in item order: each the item's single-call score."
    )
    model_time_ms: float = Field(
        ge=0.0, description="The one simulated latency the batch waited (or burned)."
    )


class ScoreAnswer(BaseModel):
    """A scoring handler's answer."""

    model_config = ConfigDict(extra="forbid")
    detail: float = Field(ge=0.0, le=1.0, description="The mean of the model scores.")
    entity_id: str = Field(description="The entity whose stored features were used.")
    scores: list[float] = Field(min_length=1, description="Each model's score, in model order.")


class TaskResult(ScoreAnswer):
    """A finished task's result: the scoring handler's answer and its steps' times."""

    timings: dict[str, float] = Field(description="Milliseconds per step (as in Server-Timing).")


TaskStatus = Literal["PENDING", "STARTED", "RETRY", "SUCCESS", "FAILURE"]


class TaskDocument(BaseModel):
    """A queued task as the queue API answers it (and a callback receives it)."""

    model_config = ConfigDict(extra="forbid")
    task_id: str = Field(pattern=TASK_ID_PATTERN)
    status: TaskStatus
    result: TaskResult | SkipJsonSchema[None] = Field(None, description="Only when SUCCESS.")
    error: ErrorBody | SkipJsonSchema[None] = Field(None, description="When FAILURE or RETRY.")


class HealthBody(BaseModel):
    """``GET /api/v1/healthcheck``: a service's status and each dependency's (core.health)."""

    model_config = ConfigDict(extra="forbid")
    status: Literal["OK", "DEGRADED"]
    dependencies: dict[str, str] | SkipJsonSchema[None] = Field(
        None, description='"OK", or "DOWN: <why>" / "UNKNOWN: <why>"; absent for a model API.'
    )
