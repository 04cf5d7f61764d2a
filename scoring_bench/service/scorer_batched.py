"""The batching scorer (api_scoring_batched/, doc/batching.md): the async scorer's feature-store read and
answer, its model calls collected from concurrent requests into micro-batches, one batch call per model.

Each request submits its model input (the same combined features the async handler sends) once per
model to one :class:`~scoring_bench.service.batcher.MicroBatcher` keyed by model id; the model API's
batch route scores every item as its single route would, so the answer equals the async handler's.
Its timings add, per model, the wait for its batch to be sent (``batch_wait_<i>``), the batch call
(``model_<i>``: the whole call its item rode in) and, as a note, the batch's size (``batch_size_<i>``).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, ClassVar

import orjson

from scoring_bench.core import features as fs
from scoring_bench.core.schemas import ScoreRequest
from scoring_bench.core.scoring import response_body
from scoring_bench.core.settings import Architecture, Settings
from scoring_bench.core.timing import (
    FEATURE_STORE_STEP,
    Timings,
    batch_size_note,
    batch_wait_step,
    model_step,
)
from scoring_bench.service.batcher import MicroBatcher
from scoring_bench.service.scorer_async import AsyncScorer

ModelInput = list[float]


class BatchedScorer(AsyncScorer):
    """Made with the app, started in its lifespan (the batcher's timers and tasks live on its loop)."""

    architecture: ClassVar[Architecture] = "batched"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.batcher: MicroBatcher[int, ModelInput, float] | None = None

    async def start(self) -> None:
        await super().start()
        self.batcher = MicroBatcher(
            self.call_batch, self.settings.batch_max_size, self.settings.batch_max_wait_ms / 1000.0
        )

    async def close(self) -> None:
        if self.batcher is not None:
            await self.batcher.aclose()  # the batches in flight end before their client closes
        await super().close()

    async def call_batch(self, model_id: int, items: list[ModelInput]) -> list[float]:
        """One model, one call, every item of the batch (HTTP_CLIENT_LIFETIME=request: a client per batch)."""
        async with self.model_client() as client:
            return await client.predict_batch(orjson.dumps(items), model_id, len(items))

    async def score(self, request: ScoreRequest) -> tuple[dict[str, Any], Timings]:
        assert self.batcher is not None, "BatchedScorer.start() was not called"
        timings = Timings()
        entity_id = self.entity_id(request)
        started = time.perf_counter()
        stored = await self.read_features(entity_id)
        timings.add(FEATURE_STORE_STEP, started)
        item = fs.combine(request.features, stored)
        answers = await asyncio.gather(*(self.batcher.submit(i, item) for i in self.model_ids))
        for model_id, answer in zip(self.model_ids, answers):
            timings.steps[batch_wait_step(model_id)] = answer.wait_ms
            timings.steps[model_step(model_id)] = answer.call_ms
            timings.notes[batch_size_note(model_id)] = str(answer.size)
        return response_body(entity_id, [a.value for a in answers]), timings
