"""The services' HTTP contract: one OpenAPI 3.1 document per service, from the shared models.

The Flask and the FastAPI services serve the document this module builds at ``/openapi.json``
(``scoring_bench.service.flask_adapter`` / ``fastapi_adapter``), so a sync service and its async
twin publish the same contract, and ``make fuzz`` (schemathesis) checks every service against
it. The request bodies come from :class:`~scoring_bench.core.schemas.RequestParser` (the same
validation the handlers run), the answers from the response models of
:mod:`scoring_bench.core.schemas` and every error from :class:`~scoring_bench.core.errors.ErrorBody`.
Each operation lists every status it can answer, and for an error status the codes its
``error`` field can carry. The queue's submit links its ``task_id`` to the status operation
(OpenAPI links), so a stateful fuzzer can follow a task.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from scoring_bench.core.callback_urls import MAX_URL_LENGTH, callback_url_pattern
from scoring_bench.core.endpoints import (
    EXAMPLE_FEATURES,
    HEALTH_PATH,
    QUEUE_PREDICT_PATH,
    QUEUE_TASKS_PATH,
    batch_path,
)
from scoring_bench.core.errors import (
    HTTP_ERROR_CODES,
    BatchTooLarge,
    ErrorBody,
    FeatureStoreUnavailable,
    InvalidBody,
    InvalidJSON,
    ModelTimeout,
    ModelUnavailable,
    PayloadTooLarge,
    QueueUnavailable,
    RequestTimeout,
    ScoringError,
    UnknownEntity,
    UnknownTask,
)
from scoring_bench.core.schemas import (
    HealthBody,
    ModelAnswer,
    ModelBatchAnswer,
    RequestParser,
    ScoreAnswer,
    TaskDocument,
)
from scoring_bench.core.tasks import TASK_ID_PATTERN

API_VERSION = "1.0.0"  # the contract's version (the paths carry /v1)
Kind = Literal["model", "scoring", "queue"]
TASK_PATH = QUEUE_TASKS_PATH + "/{task_id}"
REF = "#/components/schemas/{model}"
MODELS: tuple[type[BaseModel], ...] = (
    ErrorBody,
    ModelAnswer,
    ModelBatchAnswer,
    ScoreAnswer,
    TaskDocument,
    HealthBody,
)

# An error the framework raises itself, as (status, code): a path parameter that decodes to
# another path (``%2F``) matches no route.
NO_ROUTE = (404, HTTP_ERROR_CODES[404])
# Any request: a request line and headers over MAX_HEADER_BYTES (a long query string, say) are
# refused by the servers' guard before the app (core.http_limits; make fuzz found it undocumented).
HEAD_TOO_LARGE = (431, "headers_too_large")
Error = type[ScoringError] | tuple[int, str]
# RequestTimeout: the body stopped coming (the servers' slow-client guard, doc/limits.md)
BODY_ERRORS: tuple[Error, ...] = (InvalidJSON, PayloadTooLarge, InvalidBody, RequestTimeout)
DEPENDENCY_ERRORS: tuple[Error, ...] = (ModelUnavailable, FeatureStoreUnavailable, ModelTimeout)
SERVER_TIMING = {
    "Server-Timing": {
        "description": "Milliseconds of the feature-store read, each model call and the total.",
        "required": True,
        "schema": {"type": "string"},
    }
}
LOCATION = {
    "Location": {
        "description": "The task's status path.",
        "required": True,
        "schema": {"type": "string"},
    }
}


def ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def json_content(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def error_responses(errors: Iterable[Error]) -> dict[str, Any]:
    """One response per status, its ``error`` limited to the codes that status can carry."""
    codes: dict[int, list[str]] = {}
    for error in errors:
        status, code = error if isinstance(error, tuple) else (error.status, error.code)
        if code not in codes.setdefault(status, []):
            codes[status].append(code)
    return {
        str(status): {
            "description": "error: " + ", ".join(listed),
            "content": json_content({"allOf": [ref(ErrorBody), {"properties": {"error": {"enum": listed}}}]}),
        }
        for status, listed in sorted(codes.items())
    }


def answer(model: type[BaseModel], description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description, "content": json_content(ref(model))}
    if headers:
        response["headers"] = headers
    return response


def request_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "required": True,
        "content": {"application/json": {"schema": schema, "example": EXAMPLE_FEATURES}},
    }


def query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def health_operation(can_degrade: bool) -> dict[str, Any]:
    responses = {"200": answer(HealthBody, "The service and every dependency it checks are OK.")}
    if can_degrade:
        responses["503"] = answer(HealthBody, "DEGRADED: a dependency is down (named in dependencies).")
    responses |= error_responses([HEAD_TOO_LARGE])
    return {"operationId": "healthcheck", "summary": "Health of the service", "responses": responses}


MODEL_ID = query(
    "model_id",
    {"type": "integer", "minimum": 0, "maximum": 9999},
    "Which model (its weights and offset depend on it); 0 by default.",
)


def model_predict(parser: RequestParser) -> dict[str, Any]:
    return {
        "operationId": "predict",
        "summary": "Score a feature vector with one fake model",
        "parameters": [MODEL_ID],
        "requestBody": request_body(parser.features_adapter.json_schema()),
        "responses": {
            "200": answer(ModelAnswer, "The score."),
            **error_responses([*BODY_ERRORS, HEAD_TOO_LARGE]),
        },
    }


def model_predict_batch(parser: RequestParser) -> dict[str, Any]:
    return {
        "operationId": "predictBatch",
        "summary": "Score a batch of feature vectors with one fake model in one call",
        "description": "One score per item, each equal to the item's single-call score; one simulated "
        "latency for the whole batch (a draw plus MODEL_BATCH_PER_ITEM_MS per item). At most "
        f"{parser.max_batch} items (MODEL_MAX_BATCH).",
        "parameters": [MODEL_ID],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": parser.batch_adapter.json_schema(),
                    "example": [EXAMPLE_FEATURES, EXAMPLE_FEATURES],
                }
            },
        },
        "responses": {
            "200": answer(ModelBatchAnswer, "One score per item, in item order."),
            **error_responses([*BODY_ERRORS, BatchTooLarge, HEAD_TOO_LARGE]),
        },
    }


def scoring_predict(parser: RequestParser) -> dict[str, Any]:
    return {
        "operationId": "predict",
        "summary": "Score an entity: its stored features, then every model, then the mean",
        "requestBody": request_body(parser.scoring_json_schema()),
        "responses": {
            "200": answer(ScoreAnswer, "The mean score and each model's.", SERVER_TIMING),
            **error_responses([*BODY_ERRORS, UnknownEntity, *DEPENDENCY_ERRORS, HEAD_TOO_LARGE]),
        },
    }


def queue_operations(
    parser: RequestParser, max_wait_ms: int, callback_hosts: Iterable[str]
) -> dict[str, Any]:
    wait_ms = query(
        "wait_ms",
        {"type": "integer", "minimum": 0, "maximum": max_wait_ms},
        f"Wait up to this many ms (at most {max_wait_ms}: QUEUE_MAX_WAIT_MS) for the result.",
    )
    follow = {
        "GetTask": {
            "operationId": "getTask",
            "parameters": {"task_id": "$response.body#/task_id"},
            "description": "The task's status and, once it has ended, its result.",
        }
    }
    submitted = answer(TaskDocument, "Queued: the task's id (PENDING).", LOCATION) | {"links": follow}
    finished = answer(TaskDocument, "Ended within wait_ms: SUCCESS or FAILURE.", LOCATION) | {"links": follow}
    submit = {
        "operationId": "submit",
        "summary": "Queue a scoring task",
        "parameters": [
            wait_ms,
            query(
                "callback_url",
                {
                    "type": "string",
                    "maxLength": MAX_URL_LENGTH,
                    "pattern": callback_url_pattern(callback_hosts),
                },
                "POST the task's document here when it ends (CALLBACK_ALLOWED_HOSTS only).",
            ),
        ],
        "requestBody": request_body(parser.scoring_json_schema()),
        "responses": {
            "200": finished,
            "202": submitted,
            **error_responses([*BODY_ERRORS, QueueUnavailable, HEAD_TOO_LARGE]),
        },
    }
    status = {
        "operationId": "getTask",
        "summary": "A task's status, and its result once it has ended",
        "parameters": [
            {
                "name": "task_id",
                "in": "path",
                "required": True,
                "schema": {"type": "string", "pattern": TASK_ID_PATTERN},
                "description": "The id the submit answered.",
            },
            wait_ms,
        ],
        "responses": {
            "200": answer(TaskDocument, "The task's document."),
            **error_responses([UnknownTask, NO_ROUTE, InvalidBody, QueueUnavailable, HEAD_TOO_LARGE]),
        },
    }
    return {QUEUE_PREDICT_PATH: {"post": submit}, TASK_PATH: {"get": status}}


def document(
    kind: Kind,
    title: str,
    predict_path: str,
    parser: RequestParser,
    max_wait_ms: int = 0,
    callback_hosts: Iterable[str] = (),
) -> dict[str, Any]:
    """The OpenAPI document of one service: a model API, a scoring handler or the queue API."""
    if kind == "model":
        paths: dict[str, Any] = {
            predict_path: {"post": model_predict(parser)},
            batch_path(predict_path): {"post": model_predict_batch(parser)},
        }
    elif kind == "scoring":
        paths = {predict_path: {"post": scoring_predict(parser)}}
    else:
        paths = queue_operations(parser, max_wait_ms, callback_hosts)
    paths[HEALTH_PATH] = {"get": health_operation(can_degrade=kind != "model")}
    _, schemas = models_json_schema([(m, "serialization") for m in MODELS], ref_template=REF)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": API_VERSION},
        "paths": paths,
        "components": {"schemas": schemas["$defs"]},
    }
