"""FastAPI scoring handler: feature store, then the models concurrently."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from starlette.routing import Route

from scoring_bench.core import openapi
from scoring_bench.core.endpoints import ASYNC_PREDICT_PATH, HEALTH_PATH, index
from scoring_bench.core.health import health_response
from scoring_bench.core.schemas import RequestParser
from scoring_bench.core.settings import Settings
from scoring_bench.service import fastapi_adapter, metrics, profiling
from scoring_bench.service.fastapi_adapter import json_response, read_body
from scoring_bench.service.scorer_async import AsyncScorer

SERVICE = "scoring-async"


def create_app(settings: Settings) -> FastAPI:
    parser = RequestParser(settings.max_features, settings.max_body_bytes)
    scorer = AsyncScorer(settings)
    recorder = metrics.recorder(settings, SERVICE)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await scorer.start()
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

    async def predict(request: Request) -> Response:
        body, timings = await scorer.score(parser.scoring(await read_body(request, settings.max_body_bytes)))
        if recorder is not None:
            recorder.observe_timings(timings)
        return json_response(body, headers={"Server-Timing": timings.header()})

    # A plain Starlette route, first in the table: FastAPI's own route would solve dependencies (and parse
    # the query string) for every request, and the router tries the routes in order. The handler parses its
    # body itself and the contract is core.openapi's document, so FastAPI's route would add nothing.
    app.router.routes.insert(0, Route(ASYNC_PREDICT_PATH, predict, methods=["POST"]))

    @app.get(HEALTH_PATH)
    async def healthcheck() -> Response:
        return json_response(*health_response(await scorer.health()))

    return app


def from_environment() -> FastAPI:
    """The server's entry point (``uvicorn --factory``): the settings from the environment."""
    return create_app(Settings())
