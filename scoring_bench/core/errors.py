"""Errors a client can cause or a dependency can raise, and their JSON bodies.

Every service answers a failure with the same body shape::

    {"error": "<code>", "message": "<what is wrong>", "details": [...]}

so a client (and the benchmark's response checks) handles one format.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class ScoringError(Exception):
    """An error with an HTTP status and a machine-readable code."""

    status: int = 500
    code: str = "internal_error"

    def __init__(self, message: str, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []

    def body(self) -> dict[str, Any]:
        return error_body(self.code, self.message, self.details)


class InvalidJSON(ScoringError):
    status, code = 400, "invalid_json"


class InvalidBody(ScoringError):
    status, code = 422, "invalid_body"


class BatchTooLarge(ScoringError):
    """A model API's batch of more items than MODEL_MAX_BATCH."""

    status, code = 422, "batch_too_large"


class PayloadTooLarge(ScoringError):
    status, code = 413, "payload_too_large"


class UnknownEntity(ScoringError):
    status, code = 404, "unknown_entity"


class ModelUnavailable(ScoringError):
    status, code = 502, "model_unavailable"


class ModelTimeout(ScoringError):
    status, code = 504, "model_timeout"


class FeatureStoreUnavailable(ScoringError):
    status, code = 503, "feature_store_unavailable"


class UnknownTask(ScoringError):
    status, code = 404, "unknown_task"


class QueueUnavailable(ScoringError):
    status, code = 503, "queue_unavailable"


class RequestTimeout(ScoringError):
    """The client did not send its whole request in time (REQUEST_READ_TIMEOUT_S), or went away
    while sending it."""

    status, code = 408, "request_timeout"


class ErrorBody(BaseModel):
    """The body of every error answer (what :func:`error_body` builds), as published in OpenAPI."""

    model_config = ConfigDict(extra="forbid")
    error: str = Field(description="A machine-readable code, e.g. invalid_body.")
    message: str = Field(description="What is wrong, for a person.")
    details: list[dict[str, Any]] = Field(description="Where and what, e.g. each validation error.")


def error_body(code: str, message: str, details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"error": code, "message": message, "details": details or []}


def from_validation_error(exc: ValidationError) -> ScoringError:
    """Turn pydantic's error into ours: 400 for unparsable JSON, 422 otherwise."""
    errors = exc.errors(include_url=False, include_input=False, include_context=False)
    if any(e["type"] == "json_invalid" for e in errors):
        return InvalidJSON(
            "the body is not valid JSON: " + errors[0]["msg"],
            [{"loc": list(e["loc"]), "msg": e["msg"]} for e in errors],
        )
    details = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in errors[:20]]
    first = details[0]
    where = ".".join(str(p) for p in first["loc"]) or "body"
    return InvalidBody(f"{where}: {first['msg']}", details)


def http_error(status: int, description: str) -> dict[str, Any]:
    """Body for a framework-level error (404 route, 405 method, ...)."""
    return error_body(HTTP_ERROR_CODES.get(status, f"http_{status}"), description)


# The codes of the errors the frameworks raise themselves (no route, wrong method, body too large).
HTTP_ERROR_CODES = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}
