"""Flask scoring handler: feature store, then the models one after another."""

from __future__ import annotations

from flask import Response

from scoring_bench.service import metrics
from scoring_bench.service import profiling
from scoring_bench.service.flask_adapter import create_app, json_response, read_body
from scoring_bench.core.schemas import RequestParser
from scoring_bench.service.scorer_sync import SyncScorer
from scoring_bench.core.service_info import HEALTH_PATH, SYNC_PREDICT_PATH, health, index
from scoring_bench.core.settings import Settings

settings = Settings()
parser = RequestParser(settings.max_features, settings.max_body_bytes)
scorer = SyncScorer(settings)
recorder = metrics.recorder(settings, "scoring-sync")
app = create_app(__name__, settings, index("scoring-sync", SYNC_PREDICT_PATH, docs=False))
profiling.install_flask(app, settings, "scoring-sync")


@app.post(SYNC_PREDICT_PATH)
def predict() -> Response:
    body, timings = scorer.score(parser.scoring(read_body()))
    if recorder is not None:
        recorder.observe_timings(timings)
    return json_response(body, headers={"Server-Timing": timings.header()})


@app.get(HEALTH_PATH)
def healthcheck() -> Response:
    return json_response(*health(scorer.health()))
