"""FastAPI batching scoring handler: the async handler's contract, its model calls in micro-batches
(scoring_bench.service.scorer_batched, doc/batching.md)."""

from __future__ import annotations

from fastapi import FastAPI

from scoring_bench.core.endpoints import BATCHED_PREDICT_PATH
from scoring_bench.core.settings import Settings
from scoring_bench.service.async_scoring_app import create_scoring_app
from scoring_bench.service.scorer_batched import BatchedScorer

SERVICE = "scoring-batched"


def create_app(settings: Settings) -> FastAPI:
    title = "scoring-bench scoring handler (batched)"
    return create_scoring_app(settings, BatchedScorer(settings), SERVICE, BATCHED_PREDICT_PATH, title)


def from_environment() -> FastAPI:
    """The server's entry point (``uvicorn --factory``): the settings from the environment."""
    return create_app(Settings())
