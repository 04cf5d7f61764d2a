"""FastAPI scoring handler: feature store, then the models concurrently."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Response

from scoring_bench.core import openapi
from scoring_bench.core.endpoints import ASYNC_PREDICT_PATH, HEALTH_PATH, index
from scoring_bench.core.health import health_response
from scoring_bench.core.schemas import RequestParser
from scoring_bench.core.settings import Settings
from scoring_bench.service import fastapi_adapter, metrics, profiling
from scoring_bench.service.fastapi_adapter import Receive, Scope, Send, json_response, receive_body, send_json
from scoring_bench.service.gc_tuning import tune_gc
from scoring_bench.service.scorer_async import AsyncScorer

SERVICE = "scoring-async"


def create_app(settings: Settings) -> FastAPI:
    parser = RequestParser(settings.max_features, settings.max_body_bytes)
    scorer = AsyncScorer(settings)
    recorder = metrics.recorder(settings, SERVICE, on_loop=True)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await scorer.start()
        tune_gc(settings)
        yield
        await scorer.close()

    contract = openapi.document(
        "scoring", "scoring-bench scoring handler (async)", ASYNC_PREDICT_PATH, parser
    )
    app = fastapi_adapter.create_app(
        contract,
        index(SERVICE, ASYNC_PREDICT_PATH, docs=True),
        settings,
        lifespan,
    )
    profiling.install_fastapi(app, settings, SERVICE)

    async def predict(scope: Scope, receive: Receive, send: Send) -> None:
        raw = await receive_body(scope, receive, settings.max_body_bytes)
        body, timings = await scorer.score(parser.scoring(raw))
        if recorder is not None:
            recorder.observe_timings(timings)
        await send_json(send, body, headers=[(b"server-timing", timings.header().encode("latin-1"))])

    # An ASGI endpoint, first in the router and taken there directly (DirectRoute): FastAPI's own route would
    # solve dependencies (and parse the query string) for every request, the router tries the routes in
    # order, and a Request and a Response cost objects the handler does not need. The handler parses its
    # body itself and the contract is core.openapi's document, so FastAPI's route would add nothing.
    fastapi_adapter.add_direct_route(app, ASYNC_PREDICT_PATH, "POST", predict)

    @app.get(HEALTH_PATH)
    async def healthcheck() -> Response:
        return json_response(*health_response(await scorer.health()))

    return app


def from_environment() -> FastAPI:
    """The server's entry point (``uvicorn --factory``): the settings from the environment."""
    return create_app(Settings())
