"""FastAPI scoring handler: feature store, then the models concurrently."""

from __future__ import annotations

from fastapi import FastAPI

from scoring_bench.core.endpoints import ASYNC_PREDICT_PATH
from scoring_bench.core.settings import Settings
from scoring_bench.service.async_scoring_app import create_scoring_app
from scoring_bench.service.scorer_async import AsyncScorer

SERVICE = "scoring-async"


def create_app(settings: Settings) -> FastAPI:
    return create_scoring_app(
        settings, AsyncScorer(settings), SERVICE, ASYNC_PREDICT_PATH, "scoring-bench scoring handler (async)"
    )


def from_environment() -> FastAPI:
    """The server's entry point (``uvicorn --factory``): the settings from the environment."""
    return create_app(Settings())
