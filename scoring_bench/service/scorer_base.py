"""What the sync and async scorers do identically, written once (as httpx's ``BaseClient`` serves
``Client`` and ``AsyncClient``): which entity a request reads, the model input, whether the model
calls run concurrently (``Settings.concurrent_model_calls``), the answer and its timings, and the
health of the dependencies. The subclasses add only the I/O: how they wait."""

from __future__ import annotations

from typing import Any, ClassVar

import orjson

from scoring_bench.core import features as fs
from scoring_bench.core.errors import FeatureStoreUnavailable
from scoring_bench.core.schemas import ScoreRequest
from scoring_bench.core.scoring import response_body
from scoring_bench.core.settings import Architecture, Settings
from scoring_bench.core.timing import FEATURE_STORE_STEP, Timings, ordered_steps

JSON_HEADERS = {"Content-Type": "application/json"}
HEALTH_TIMEOUT_S = 0.5  # one dependency's health check: a hung one must not hang the health endpoint


class BaseScorer:
    """Feature-store read, then ``NUM_MODELS`` model calls, then the mean of their scores."""

    architecture: ClassVar[Architecture]

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.concurrent = settings.concurrent_model_calls(self.architecture)
        self.model_ids = range(settings.num_models)

    def entity_id(self, request: ScoreRequest) -> str:
        return request.entity_id or self.settings.default_entity_id

    def feature_key(self, entity_id: str) -> str:
        return fs.entity_key(self.settings.redis_key_prefix, entity_id)

    @staticmethod
    def store_unavailable(exc: Exception) -> FeatureStoreUnavailable:
        return FeatureStoreUnavailable(f"feature store unreachable: {exc}")

    @staticmethod
    def model_input(request: ScoreRequest, stored: list[float]) -> bytes:
        """The body every model call sends: the request's features shifted by the stored ones."""
        return orjson.dumps(fs.combine(request.features, stored))

    def answer(self, entity_id: str, scores: list[float], timings: Timings) -> tuple[dict[str, Any], Timings]:
        """The handler's body, and its timings (concurrent calls end in any order: reported by
        model id)."""
        if self.concurrent:
            timings.steps = ordered_steps(timings.steps, self.settings.num_models)
        return response_body(entity_id, scores), timings

    @staticmethod
    def dependencies(feature_store: str, model_api: str) -> dict[str, str]:
        """The health of both dependencies (:mod:`scoring_bench.core.health` strings)."""
        return {FEATURE_STORE_STEP: feature_store, "model_api": model_api}
