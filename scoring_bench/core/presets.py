"""Presets: named sets of settings, applied under whatever the user sets explicitly.

``tuned`` is the best configuration of each architecture that we measured: the defaults of
:class:`~scoring_bench.core.settings.Settings`. ``seed-faithful`` reproduces the choices of seed 002
(a new HTTP client for every request, a blocking Redis call inside the async handler, meinheld
workers as its Docker images ran them, model calls one after another in the sync handler), so the
benchmark can measure how much of the sync–async gap each of those choices makes; and, for the queue,
the Celery of seeds 001 and 004 as it comes (Celery's and kombu's defaults: a prefork pool of one process
per core, 4 tasks prefetched per process, early acks, no STARTED state, the stored state read before a
SUCCESS is stored, results kept a day, JSON, a Redis client object per broker operation; the task published
inline by the request handler; the wait for a result polls the store; the model calls one after another),
so it can measure
how much of the queue's distance from its ideal each of those choices makes.
"""

from __future__ import annotations

from typing import Any

# The seed's images (tiangolo's meinheld-gunicorn-flask and uvicorn-gunicorn-fastapi) start
# 2 workers per core: 4 on a 2-core machine.
SEED_WORKERS = 4
# Celery's prefork pool starts one process per core by default: 2 on a 2-core machine.
SEED_QUEUE_CONCURRENCY = 2
CELERY_RESULT_EXPIRES_S = 86_400  # Celery's result_expires: one day

# The queue as seeds 001 and 004 ran it: Celery's defaults. The benchmark's client polls it plainly.
SEED_QUEUE: dict[str, Any] = {
    "queue_wakeup": "poll",
    "queue_publish": "inline",  # send_task in the request handler (seed 004's async def, 001's Flask view)
    "queue_serializer": "json",
    "queue_message_repr": "celery",
    "queue_broker_client": "operation",  # kombu's: a Redis client object per publish, delivery and ack
    "queue_worker_pool": "prefork",
    "queue_worker_concurrency": SEED_QUEUE_CONCURRENCY,
    "queue_prefetch_multiplier": 4,
    "queue_acks_late": False,
    "queue_track_started": False,
    "queue_result_read_before_success": True,  # Celery reads the stored state before storing a SUCCESS
    "queue_result_expires_s": CELERY_RESULT_EXPIRES_S,
    "queue_model_calls": "sequential",
}

# The sync and async handlers as seed 002 ran them.
SEED_HANDLERS: dict[str, Any] = {
    "http_client_lifetime": "request",
    "sync_http_client": "requests",
    "async_http_client": "httpx",
    "async_redis_client": "blocking",
    "model_sync_worker_class": "meinheld",
    "model_sync_workers": SEED_WORKERS,
    "scoring_sync_worker_class": "meinheld",
    "scoring_sync_workers": SEED_WORKERS,
    "model_async_workers": SEED_WORKERS,
    "scoring_async_workers": SEED_WORKERS,
}

PRESETS: dict[str, dict[str, Any]] = {
    "tuned": {},
    "seed-faithful": {**SEED_HANDLERS, **SEED_QUEUE},
}


def apply_preset(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` (what the user set) on top of the preset they name (default ``tuned``)."""
    name = str(values.get("scoring_preset") or "tuned").lower()
    if name not in PRESETS:
        raise ValueError(f"SCORING_PRESET must be one of {', '.join(PRESETS)}, got {name!r}")
    return {**PRESETS[name], **values, "scoring_preset": name}
