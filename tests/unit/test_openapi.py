"""The services' OpenAPI documents (scoring_bench.core.openapi) and the response models behind them."""

from __future__ import annotations

import re
from typing import Any

import pytest
import schemathesis

from scoring_bench.core import openapi
from scoring_bench.core.callback_urls import callback_refusal, callback_url_pattern
from scoring_bench.core.endpoints import (
    ASYNC_PREDICT_PATH,
    HEALTH_PATH,
    QUEUE_PREDICT_PATH,
    SYNC_PREDICT_PATH,
    batch_path,
)
from scoring_bench.core.errors import ErrorBody, InvalidBody, error_body
from scoring_bench.core.health import health_response
from scoring_bench.core.schemas import (
    HealthBody,
    ModelAnswer,
    ModelBatchAnswer,
    RequestParser,
    ScoreAnswer,
    TaskDocument,
)
from scoring_bench.core.scoring import model_batch_body, model_body, response_body
from scoring_bench.core.tasks import new_task_id, task_document

PARSER = RequestParser(max_features=1000, max_body_bytes=1 << 20)
LOOPBACK = ("127.0.0.1", "localhost", "::1")
TASK = openapi.TASK_PATH


def doc(kind: openapi.Kind, path: str = SYNC_PREDICT_PATH) -> dict[str, Any]:
    return openapi.document(kind, f"{kind} API", path, PARSER, 5000, LOOPBACK)


def statuses(document: dict[str, Any], path: str, method: str) -> set[str]:
    return set(document["paths"][path][method]["responses"])


def error_codes(document: dict[str, Any], path: str, method: str, status: str) -> list[str]:
    schema = document["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]
    return list(schema["allOf"][1]["properties"]["error"]["enum"])


@pytest.mark.parametrize("kind", ["model", "scoring", "queue"])
def test_each_document_loads_in_schemathesis(kind: openapi.Kind) -> None:
    loaded = schemathesis.openapi.from_dict(doc(kind))
    labels = {op.ok().label for op in loaded.get_all_operations()}
    # the model API: predict, predict_batch, health; the queue: submit, task, health
    assert f"GET {HEALTH_PATH}" in labels and len(labels) == (2 if kind == "scoring" else 3)


def test_every_status_a_handler_can_answer_is_documented() -> None:
    """431: a request line and headers over MAX_HEADER_BYTES, refused by the servers' guard (make fuzz
    found it undocumented: a long callback_url)."""
    assert statuses(doc("model"), SYNC_PREDICT_PATH, "post") == {"200", "400", "408", "413", "422", "431"}
    assert statuses(doc("scoring"), SYNC_PREDICT_PATH, "post") == {
        "200",
        "400",
        "404",
        "408",
        "413",
        "422",
        "431",
        "502",
        "503",
        "504",
    }
    queue = doc("queue")
    assert statuses(queue, QUEUE_PREDICT_PATH, "post") == {
        "200",
        "202",
        "400",
        "408",
        "413",
        "422",
        "431",
        "503",
    }
    assert statuses(queue, TASK, "get") == {"200", "404", "422", "431", "503"}
    assert statuses(doc("model"), HEALTH_PATH, "get") == {"200", "431"}
    batch = batch_path(SYNC_PREDICT_PATH)
    assert statuses(doc("model"), batch, "post") == {"200", "400", "408", "413", "422", "431"}
    assert error_codes(doc("model"), batch, "post", "422") == ["invalid_body", "batch_too_large"]
    assert statuses(doc("scoring"), HEALTH_PATH, "get") == {"200", "431", "503"}
    assert error_codes(queue, TASK, "get", "431") == ["headers_too_large"]


def test_an_error_status_lists_its_codes() -> None:
    scoring = doc("scoring")
    assert error_codes(scoring, SYNC_PREDICT_PATH, "post", "404") == ["unknown_entity"]
    assert error_codes(scoring, SYNC_PREDICT_PATH, "post", "503") == ["feature_store_unavailable"]
    assert error_codes(doc("queue"), TASK, "get", "404") == ["unknown_task", "not_found"]


def test_the_twins_publish_the_same_contract() -> None:
    sync, asynchronous = doc("scoring", SYNC_PREDICT_PATH), doc("scoring", ASYNC_PREDICT_PATH)
    assert sync["paths"][SYNC_PREDICT_PATH] == asynchronous["paths"][ASYNC_PREDICT_PATH]
    assert sync["components"] == asynchronous["components"]


def test_the_queue_links_a_submit_to_its_task() -> None:
    queue = doc("queue")
    submit = queue["paths"][QUEUE_PREDICT_PATH]["post"]
    for status in ("200", "202"):
        link = submit["responses"][status]["links"]["GetTask"]
        assert link["parameters"] == {"task_id": "$response.body#/task_id"}
        assert link["operationId"] == queue["paths"][TASK]["get"]["operationId"]
        assert submit["responses"][status]["headers"]["Location"]["required"]


def test_the_answers_match_their_models() -> None:
    ModelAnswer.model_validate(model_body(0.25, 45.1234))
    ModelBatchAnswer.model_validate(model_batch_body([0.25, 1.0], 47.1234))
    ScoreAnswer.model_validate(response_body("7", [0.2, 0.4]))
    ErrorBody.model_validate(InvalidBody("bad", [{"loc": [0], "msg": "x"}]).body())
    ErrorBody.model_validate(error_body("not_found", "no such path"))
    HealthBody.model_validate(health_response()[0])
    HealthBody.model_validate(health_response({"feature_store": "DOWN: refused"})[0])
    task_id = new_task_id()
    TaskDocument.model_validate(task_document(task_id, "PENDING"))
    result = {**response_body("0", [0.5, 0.5]), "timings": {"feature_store": 0.3, "total": 50.0}}
    TaskDocument.model_validate(task_document(task_id, "SUCCESS", result))
    TaskDocument.model_validate(task_document(task_id, "FAILURE", error=error_body("unknown_entity", "no")))


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9000/hook",
        "HTTPS://LocalHost/a?b=c#d",
        "http://[::1]:65535/",
        "http://127.0.0.1",
        "http://127.0.0.1:0/",
        "http://127.0.0.1:/",
        "http://127.0.0.1:65536/",
        "http://127.0.0.1:00080/",
        "http://localhost/a b",
        "http://localhost/é",
        "http://localhost/\n",
        "http://localhost\t/",
        "http://127.0.0.2/",
        "http://user@localhost/",
        "http://127.0.0.1.example.com/",
        "ftp://localhost/",
    ],
)
def test_the_documented_callback_pattern_is_the_check(url: str) -> None:
    """The OpenAPI pattern of callback_url accepts exactly what the API accepts (both ways; a JSON
    Schema pattern's ``$`` is the end of the string, as in a full match)."""
    pattern = callback_url_pattern(LOOPBACK)
    assert (re.fullmatch(pattern, url) is not None) == (callback_refusal(url, LOOPBACK) is None)
