"""Flask model API: a fake model that sleeps (or burns CPU) and scores."""

from __future__ import annotations

import time

from flask import Flask, Response, request

from scoring_bench.core import openapi
from scoring_bench.core.endpoints import HEALTH_PATH, SYNC_PREDICT_PATH, batch_path, index
from scoring_bench.core.health import health_response
from scoring_bench.core.model import LatencySampler, burn_cpu, score
from scoring_bench.core.schemas import RequestParser, parse_model_id
from scoring_bench.core.scoring import model_batch_body, model_body
from scoring_bench.core.settings import Settings
from scoring_bench.service import flask_adapter, profiling
from scoring_bench.service.flask_adapter import json_response, read_body

SERVICE = "model-sync"


def create_app(settings: Settings) -> Flask:
    parser = RequestParser(settings.max_features, settings.max_body_bytes, settings.model_max_batch)
    latency = LatencySampler(settings)
    contract = openapi.document("model", "scoring-bench model API (sync)", SYNC_PREDICT_PATH, parser)
    app = flask_adapter.create_app(
        __name__, settings, index(SERVICE, SYNC_PREDICT_PATH, docs=False), contract
    )
    profiling.install_flask(app, settings, SERVICE)

    @app.post(SYNC_PREDICT_PATH)
    def predict() -> Response:
        features = parser.features(read_body())
        model_id = parse_model_id(request.args.get("model_id"))
        ms = latency.draw_ms()
        wait(ms)
        return json_response(model_body(score(features, model_id), ms))

    @app.post(batch_path(SYNC_PREDICT_PATH))
    def predict_batch() -> Response:
        items = parser.feature_batch(read_body())
        model_id = parse_model_id(request.args.get("model_id"))
        ms = latency.draw_batch_ms(len(items))
        wait(ms)
        return json_response(model_batch_body([score(features, model_id) for features in items], ms))

    def wait(ms: float) -> None:
        if settings.model_kind == "cpu":
            burn_cpu(ms)
        else:
            time.sleep(ms / 1000.0)

    @app.get(HEALTH_PATH)
    def healthcheck() -> Response:
        return json_response(*health_response())

    return app


def from_environment() -> Flask:
    """The server's entry point (gunicorn): the settings from the environment."""
    return create_app(Settings())
