"""What the two Flask services share: JSON errors, body limits, responses."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from scoring_bench.errors import ScoringError, error_body, http_error
from scoring_bench.settings import Settings

log = logging.getLogger("scoring_bench")


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status=status, headers=headers, mimetype="application/json")


def read_body() -> bytes:
    """The raw body; werkzeug refuses one over MAX_CONTENT_LENGTH with a 413."""
    return request.get_data(cache=False)


def create_app(import_name: str, settings: Settings, index: dict[str, Any]) -> Flask:
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

    return app
