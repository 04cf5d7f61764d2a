"""FastAPI scoring handler: feature store, then the models concurrently."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response

from scoring_bench.service import metrics
from scoring_bench.service import profiling
from scoring_bench.service.fastapi_adapter import create_app, json_response, openapi_body, read_body
from scoring_bench.core.schemas import RequestParser
from scoring_bench.service.scorer_async import AsyncScorer
from scoring_bench.core.service_info import ASYNC_PREDICT_PATH, EXAMPLE_FEATURES, HEALTH_PATH, health, index
from scoring_bench.core.settings import Settings

settings = Settings()
parser = RequestParser(settings.max_features, settings.max_body_bytes)
scorer = AsyncScorer(settings)
recorder = metrics.recorder(settings, "scoring-async")


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    await scorer.start()
    yield
    await scorer.close()


app = create_app(
    "scoring-bench scoring handler (async)",
    index("scoring-async", ASYNC_PREDICT_PATH, docs=True),
    lifespan,
    settings,
)
profiling.install_fastapi(app, settings, "scoring-async")
_schema: dict[str, Any] = {
    "anyOf": [
        parser.features_adapter.json_schema(),
        parser.entity_request_model.model_json_schema(),
    ]
}


@app.post(ASYNC_PREDICT_PATH, openapi_extra=openapi_body(_schema, EXAMPLE_FEATURES))
async def predict(request: Request) -> Response:
    body, timings = await scorer.score(
        parser.scoring(await read_body(request, settings.max_body_bytes))
    )
    if recorder is not None:
        recorder.observe_timings(timings)
    return json_response(body, headers={"Server-Timing": timings.header()})


@app.get(HEALTH_PATH)
async def healthcheck() -> Response:
    return json_response(*health(await scorer.health()))
