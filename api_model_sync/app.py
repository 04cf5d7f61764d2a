"""Flask model API: a fake model that sleeps (or burns CPU) and scores."""

from __future__ import annotations

import time

from flask import Response, request

from scoring_bench.service import profiling
from scoring_bench.service.flask_adapter import create_app, json_response, read_body
from scoring_bench.core.model import LatencySampler, burn_cpu, score
from scoring_bench.core.schemas import RequestParser, parse_model_id
from scoring_bench.core.scoring import model_body
from scoring_bench.core.service_info import HEALTH_PATH, SYNC_PREDICT_PATH, health, index
from scoring_bench.core.settings import Settings

settings = Settings()
parser = RequestParser(settings.max_features, settings.max_body_bytes)
latency = LatencySampler(settings)
app = create_app(__name__, settings, index("model-sync", SYNC_PREDICT_PATH, docs=False))
profiling.install_flask(app, settings, "model-sync")


@app.post(SYNC_PREDICT_PATH)
def predict() -> Response:
    features = parser.features(read_body())
    model_id = parse_model_id(request.args.get("model_id"))
    ms = latency.draw_ms()
    if settings.model_kind == "cpu":
        burn_cpu(ms)
    else:
        time.sleep(ms / 1000.0)
    return json_response(model_body(score(features, model_id), ms))


@app.get(HEALTH_PATH)
def healthcheck() -> Response:
    return json_response(*health())
