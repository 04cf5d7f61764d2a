"""The fake model: a deterministic score and a simulated latency.

The score is a fixed logistic model whose weights depend only on the model id,
so every architecture gives the same answer for the same input. The latency is
drawn from the configured distribution (a batch: one draw plus a cost per item); the model
APIs either sleep for it (``io``) or burn CPU for it (``cpu``).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Sequence
from functools import lru_cache

from scoring_bench.core.settings import Settings


@lru_cache(maxsize=256)
def weights(model_id: int, n: int) -> tuple[float, ...]:
    """Weights in [-1, 1], fixed for a (model id, input length) pair."""
    rng = random.Random(f"model-{model_id}-{n}")
    return tuple(rng.uniform(-1.0, 1.0) for _ in range(n))


FEATURE_CLIP = 1e9  # the logistic saturates long before; clipping keeps huge inputs finite


def score(features: Sequence[float], model_id: int = 0) -> float:
    """Probability in [0, 1]: a logistic model over the (clipped) features."""
    w = weights(model_id, len(features))
    clipped = (min(max(x, -FEATURE_CLIP), FEATURE_CLIP) for x in features)
    z = math.fsum(wi * xi for wi, xi in zip(w, clipped)) / math.sqrt(len(features))
    z += 0.1 * model_id
    if z < -700:  # exp overflow: the probability is 0 to double precision
        return 0.0
    return 1.0 / (1.0 + math.exp(-z))


class LatencySampler:
    """Draws simulated model latencies in milliseconds."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.rng = random.Random(settings.model_latency_seed)

    def draw_ms(self) -> float:
        s = self.settings
        if s.model_latency == "fixed":
            value = s.model_latency_fixed_ms
        elif s.model_latency == "uniform":
            value = self.rng.uniform(s.model_latency_min_ms, s.model_latency_max_ms)
        else:
            value = s.model_latency_median_ms * math.exp(self.rng.gauss(0.0, s.model_latency_sigma))
        return min(value, s.model_latency_cap_ms)

    def draw_batch_ms(self, n: int) -> float:
        """A batch of ``n`` items: one draw (the fixed cost of a call) plus MODEL_BATCH_PER_ITEM_MS per
        item, so batching pays as it does for a real model; the cap bounds the whole."""
        s = self.settings
        return min(self.draw_ms() + s.model_batch_per_item_ms * n, s.model_latency_cap_ms)


def burn_cpu(ms: float) -> None:
    """Keep one core busy for ``ms`` milliseconds (the ``cpu`` model kind)."""
    deadline = time.perf_counter() + ms / 1000.0
    x = 0
    while time.perf_counter() < deadline:
        for _ in range(200):
            x += 1
