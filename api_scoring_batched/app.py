"""FastAPI batching scoring handler: the async handler's contract, its model calls in micro-batches
(scoring_bench.service.scorer_batched, doc/batching.md)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Response

from scoring_bench.core import openapi
from scoring_bench.core.endpoints import BATCHED_PREDICT_PATH, HEALTH_PATH, index
from scoring_bench.core.health import health_response
from scoring_bench.core.schemas import RequestParser
from scoring_bench.core.settings import Settings
from scoring_bench.service import fastapi_adapter, metrics, profiling
from scoring_bench.service.fastapi_adapter import Receive, Scope, Send, json_response, receive_body, send_json
from scoring_bench.service.gc_tuning import tune_gc
from scoring_bench.service.scorer_batched import BatchedScorer

SERVICE = "scoring-batched"


def create_app(settings: Settings) -> FastAPI:
    parser = RequestParser(settings.max_features, settings.max_body_bytes)
    scorer = BatchedScorer(settings)
    recorder = metrics.recorder(settings, SERVICE, on_loop=True)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await scorer.start()
        tune_gc(settings)
        yield
        await scorer.close()

    contract = openapi.document(
        "scoring", "scoring-bench scoring handler (batched)", BATCHED_PREDICT_PATH, parser
    )
    app = fastapi_adapter.create_app(
        contract, index(SERVICE, BATCHED_PREDICT_PATH, docs=True), settings, lifespan
    )
    profiling.install_fastapi(app, settings, SERVICE)

    async def predict(scope: Scope, receive: Receive, send: Send) -> None:
        raw = await receive_body(scope, receive, settings.max_body_bytes)
        body, timings = await scorer.score(parser.scoring(raw))
        if recorder is not None:
            recorder.observe_timings(timings)
        await send_json(send, body, headers=[(b"server-timing", timings.header().encode("latin-1"))])

    # taken directly, as the async handler's predict (api_scoring_async/app.py says why)
    fastapi_adapter.add_direct_route(app, BATCHED_PREDICT_PATH, "POST", predict)

    @app.get(HEALTH_PATH)
    async def healthcheck() -> Response:
        return json_response(*health_response(await scorer.health()))

    return app


def from_environment() -> FastAPI:
    """The server's entry point (``uvicorn --factory``): the settings from the environment."""
    return create_app(Settings())
