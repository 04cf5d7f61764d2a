"""Feature-store layout: keys, stored values, and how a request is combined.

Each entity's precomputed features live under one key as a JSON array, so a
scoring request reads them in a single Redis round trip (GET).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Sequence

from scoring_bench.core.errors import UnknownEntity


def entity_key(prefix: str, entity_id: str) -> str:
    return f"{prefix}features:{entity_id}"


def meta_key(prefix: str) -> str:
    """Records what was seeded, so seeding again is a no-op."""
    return f"{prefix}meta"


def entity_ids(count: int) -> Iterator[str]:
    return (str(i) for i in range(count))


def stored_features(entity_id: str, count: int) -> list[float]:
    """Deterministic features of one entity (the same on every machine)."""
    rng = random.Random(f"entity-{entity_id}")
    return [round(rng.uniform(-1.0, 1.0), 6) for _ in range(count)]


def encode(features: Sequence[float]) -> str:
    return json.dumps(list(features), separators=(",", ":"))


def decode(entity_id: str, raw: bytes | str | None) -> list[float]:
    if raw is None:
        raise UnknownEntity(f"no features stored for entity_id {entity_id!r}")
    features: list[float] = json.loads(raw)
    return features


def combine(request: Sequence[float], stored: Sequence[float]) -> list[float]:
    """The model input: each request feature shifted by a stored feature.

    Keeps the request's length, so the model APIs' limit on features holds
    for what the scoring handlers send them.
    """
    k = len(stored)
    return [x + stored[i % k] for i, x in enumerate(request)]
