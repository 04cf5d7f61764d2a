"""Seed the feature store with deterministic entity features.

Idempotent: a meta key records what was written; seeding the same layout
again writes nothing. Every key is under the configured prefix.
"""

from __future__ import annotations

import json
from itertools import islice

import redis
from rich.progress import Progress

from scoring_bench.core import features as fs

BATCH = 1_000
PROGRESS_FROM = 50_000  # show a progress bar from this many entities on


def layout(num_entities: int, num_features: int) -> dict[str, int]:
    return {"version": 1, "num_entities": num_entities, "num_features": num_features}


def is_seeded(client: redis.Redis, prefix: str, num_entities: int, num_features: int) -> bool:
    raw = client.get(fs.meta_key(prefix))
    return raw is not None and json.loads(raw) == layout(num_entities, num_features)


def seed(
    client: redis.Redis, prefix: str, num_entities: int, num_features: int, show_progress: bool = True
) -> int:
    """Write every entity's features; return how many were written (0 if already seeded)."""
    if is_seeded(client, prefix, num_entities, num_features):
        return 0
    ids = fs.entity_ids(num_entities)
    with Progress(transient=True, disable=not show_progress or num_entities < PROGRESS_FROM) as bar:
        task = bar.add_task("seeding the feature store", total=num_entities)
        while batch := list(islice(ids, BATCH)):
            pipe = client.pipeline(transaction=False)
            for entity_id in batch:
                pipe.set(
                    fs.entity_key(prefix, entity_id), fs.encode(fs.stored_features(entity_id, num_features))
                )
            pipe.execute()
            bar.advance(task, len(batch))
    client.set(fs.meta_key(prefix), json.dumps(layout(num_entities, num_features)))
    return num_entities
