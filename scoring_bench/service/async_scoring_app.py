"""The FastAPI app of a scoring handler whose scorer is an :class:`AsyncScorer`: the async handler and
the batching one differ only in their scorer, path and name, so both apps are built here."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Response

from scoring_bench.core import openapi
from scoring_bench.core.endpoints import HEALTH_PATH, index
from scoring_bench.core.health import health_response
from scoring_bench.core.schemas import RequestParser
from scoring_bench.core.settings import Settings
from scoring_bench.service import fastapi_adapter, metrics, profiling
from scoring_bench.service.fastapi_adapter import Receive, Scope, Send, json_response, receive_body, send_json
from scoring_bench.service.gc_tuning import tune_gc
from scoring_bench.service.scorer_async import AsyncScorer


def create_scoring_app(
    settings: Settings, scorer: AsyncScorer, service: str, predict_path: str, title: str
) -> FastAPI:
    parser = RequestParser(settings.max_features, settings.max_body_bytes)
    recorder = metrics.recorder(settings, service, on_loop=True)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await scorer.start()
        tune_gc(settings)
        yield
        await scorer.close()

    contract = openapi.document("scoring", title, predict_path, parser)
    app = fastapi_adapter.create_app(contract, index(service, predict_path, docs=True), settings, lifespan)
    profiling.install_fastapi(app, settings, service)

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
    fastapi_adapter.add_direct_route(app, predict_path, "POST", predict)

    @app.get(HEALTH_PATH)
    async def healthcheck() -> Response:
        return json_response(*health_response(await scorer.health()))

    return app
