"""Request validation: what a model API and a scoring handler accept.

The body is parsed once with pydantic-core's JSON parser (NaN and Infinity
literals refused), then validated by pydantic; no handler calls ``json.loads``
on untrusted input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import pydantic_core
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError

from scoring_bench.core.errors import InvalidBody, InvalidJSON, PayloadTooLarge, from_validation_error

# Strict: "5.1" and true are type errors, not numbers; 1e999 (infinite) is refused.
Feature = Annotated[float, Field(strict=True, allow_inf_nan=False)]
EntityId = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:\-]+$")]

ARRAY_HINT = "expected a JSON array of numbers"
SHAPE_HINT = 'expected a JSON array of numbers or an object {"entity_id": ..., "features": [...]}'


@dataclass(frozen=True)
class ScoreRequest:
    """A validated scoring request; ``entity_id`` None means the default entity."""

    entity_id: str | None
    features: tuple[float, ...]


class RequestParser:
    """Validates request bodies; built once per process from the settings."""

    def __init__(self, max_features: int, max_body_bytes: int) -> None:
        features = Annotated[list[Feature], Field(min_length=1, max_length=max_features)]

        class EntityRequest(BaseModel):
            model_config = ConfigDict(extra="forbid")
            entity_id: EntityId
            features: features

        self.max_body_bytes = max_body_bytes
        self.features_adapter: TypeAdapter[list[float]] = TypeAdapter(features)
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
    if not value.isdigit() or len(value) > 4:
        raise InvalidBody(f"model_id must be an integer from 0 to 9999, got {value!r}")
    return int(value)
