"""FastAPI model API: a fake model that awaits ``asyncio.sleep`` (or burns CPU,
blocking the loop on purpose: that is what a CPU-bound model does to it)."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI, Request, Response

from scoring_bench.core import openapi
from scoring_bench.core.endpoints import ASYNC_PREDICT_PATH, HEALTH_PATH, batch_path, index
from scoring_bench.core.health import health_response
from scoring_bench.core.model import LatencySampler, burn_cpu, score
from scoring_bench.core.schemas import RequestParser, parse_model_id
from scoring_bench.core.scoring import model_batch_body, model_body
from scoring_bench.core.settings import Settings
from scoring_bench.service import fastapi_adapter, profiling
from scoring_bench.service.fastapi_adapter import json_response, read_body

SERVICE = "model-async"


def create_app(settings: Settings) -> FastAPI:
    parser = RequestParser(settings.max_features, settings.max_body_bytes, settings.model_max_batch)
    latency = LatencySampler(settings)
    contract = openapi.document("model", "scoring-bench model API (async)", ASYNC_PREDICT_PATH, parser)
    app = fastapi_adapter.create_app(contract, index(SERVICE, ASYNC_PREDICT_PATH, docs=True), settings)
    profiling.install_fastapi(app, settings, SERVICE)

    @app.post(ASYNC_PREDICT_PATH)
    async def predict(request: Request, model_id: str | None = None) -> Response:
        features = parser.features(await read_body(request, settings.max_body_bytes))
        mid = parse_model_id(model_id)
        ms = latency.draw_ms()
        await wait(ms)
        return json_response(model_body(score(features, mid), ms))

    @app.post(batch_path(ASYNC_PREDICT_PATH))
    async def predict_batch(request: Request, model_id: str | None = None) -> Response:
        items = parser.feature_batch(await read_body(request, settings.max_body_bytes))
        mid = parse_model_id(model_id)
        ms = latency.draw_batch_ms(len(items))
        await wait(ms)
        return json_response(model_batch_body([score(features, mid) for features in items], ms))

    async def wait(ms: float) -> None:
        if settings.model_kind == "cpu":
            burn_cpu(ms)
        else:
            await asyncio.sleep(ms / 1000.0)

    @app.get(HEALTH_PATH)
    async def healthcheck() -> Response:
        return json_response(*health_response())

    return app


def from_environment() -> FastAPI:
    """The server's entry point (``uvicorn --factory``): the settings from the environment."""
    return create_app(Settings())
