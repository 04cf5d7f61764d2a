"""What the two Flask services share: JSON errors, body limits, responses."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import orjson
from flask import Flask, Response, g, request
from werkzeug.exceptions import ClientDisconnected, HTTPException

from scoring_bench.core.endpoints import OPENAPI_PATH
from scoring_bench.core.errors import RequestTimeout, ScoringError, error_body, http_error
from scoring_bench.core.settings import Settings
from scoring_bench.service import metrics

log = logging.getLogger("scoring_bench")


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status=status, headers=headers, mimetype="application/json")


def read_body() -> bytes:
    """The raw body; werkzeug refuses one over MAX_CONTENT_LENGTH with a 413. A body that stops
    coming (the client went away, or the server's guard found it too slow: REQUEST_READ_TIMEOUT_S)
    is a 408."""
    try:
        return request.get_data(cache=False)
    except ClientDisconnected:
        raise RequestTimeout("the body was not received: the client was too slow or went away") from None


def create_app(import_name: str, settings: Settings, index: dict[str, Any], openapi: dict[str, Any]) -> Flask:
    """A Flask app answering every error as JSON, with its index page, its OpenAPI document at
    ``/openapi.json`` (scoring_bench.core.openapi: the same contract as its FastAPI twin) and
    metrics."""
    app = Flask(import_name)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes

    @app.errorhandler(ScoringError)
    def _scoring_error(exc: ScoringError) -> Response:
        return json_response(exc.body(), exc.status)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        response = json_response(http_error(status, exc.description or exc.name), status)
        if status == 405 and exc.get_response().headers.get("Allow"):
            response.headers["Allow"] = exc.get_response().headers["Allow"]
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unexpected error")
        return json_response(error_body("internal_error", f"{type(exc).__name__}: {exc}"), 500)

    @app.get("/")
    def _index() -> Response:
        return json_response(index)

    document = json.dumps(openapi)  # the standard library's: orjson refuses integers beyond 64 bits

    @app.get(OPENAPI_PATH)
    def _openapi() -> Response:
        return Response(document, mimetype="application/json")

    install_metrics(app, settings, index["service"])
    return app


def install_metrics(app: Flask, settings: Settings, service: str) -> None:
    """``GET /metrics``, and every other request timed by its route template and status.

    ``after_request`` records the answer; ``teardown_request`` (which always runs) records a
    request whose answer never reached it as a 500, so the in-progress gauge cannot leak.
    """
    recorder = metrics.recorder(settings, service)
    if recorder is None:
        return

    metrics.install_process_collector(service)

    @app.get(metrics.METRICS_PATH)
    def _metrics() -> Response:
        return Response(metrics.render(request.args.getlist("name[]")), content_type=metrics.CONTENT_TYPE)

    @app.before_request
    def _started() -> None:
        if request.path != metrics.METRICS_PATH:
            g.metrics_started = time.perf_counter()
            recorder.request_started()

    def finish(status: int) -> None:
        started = g.pop("metrics_started", None)
        if started is not None:
            rule = request.url_rule
            route = rule.rule if rule is not None else metrics.UNMATCHED
            recorder.request_finished(route, request.method, status, time.perf_counter() - started)

    @app.after_request
    def _finished(response: Response) -> Response:
        finish(response.status_code)
        return response

    @app.teardown_request
    def _torn_down(_: BaseException | None) -> None:
        finish(500)
