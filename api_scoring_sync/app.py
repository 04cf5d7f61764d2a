"""Flask scoring handler: feature store, then the models one after another."""

from __future__ import annotations

from flask import Flask, Response

from scoring_bench.core import openapi
from scoring_bench.core.endpoints import HEALTH_PATH, SYNC_PREDICT_PATH, index
from scoring_bench.core.health import health_response
from scoring_bench.core.schemas import RequestParser
from scoring_bench.core.settings import Settings
from scoring_bench.service import flask_adapter, metrics, profiling
from scoring_bench.service.flask_adapter import json_response, read_body
from scoring_bench.service.scorer_sync import SyncScorer

SERVICE = "scoring-sync"


def create_app(settings: Settings) -> Flask:
    parser = RequestParser(settings.max_features, settings.max_body_bytes)
    scorer = SyncScorer(settings)
    recorder = metrics.recorder(settings, SERVICE)
    contract = openapi.document("scoring", "scoring-bench scoring handler (sync)", SYNC_PREDICT_PATH, parser)
    app = flask_adapter.create_app(
        __name__, settings, index(SERVICE, SYNC_PREDICT_PATH, docs=False), contract
    )
    profiling.install_flask(app, settings, SERVICE)

    @app.post(SYNC_PREDICT_PATH)
    def predict() -> Response:
        body, timings = scorer.score(parser.scoring(read_body()))
        if recorder is not None:
            recorder.observe_timings(timings)
        return json_response(body, headers={"Server-Timing": timings.header()})

    @app.get(HEALTH_PATH)
    def healthcheck() -> Response:
        return json_response(*health_response(scorer.health()))

    return app


def from_environment() -> Flask:
    """The server's entry point (gunicorn): the settings from the environment."""
    return create_app(Settings())
