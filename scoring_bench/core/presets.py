"""Presets: named sets of settings, applied under whatever the user sets explicitly.

``tuned`` is the best configuration of each architecture that we measured: the defaults of
:class:`~scoring_bench.core.settings.Settings`. ``seed-faithful`` reproduces the choices of seed 002
(a new HTTP client for every request, a blocking Redis call inside the async handler, meinheld
workers as its Docker images ran them, model calls one after another in the sync handler), so the
benchmark can measure how much of the sync–async gap each of those choices makes.
"""

from __future__ import annotations

from typing import Any

# The seed's images (tiangolo's meinheld-gunicorn-flask and uvicorn-gunicorn-fastapi) start
# 2 workers per core: 4 on a 2-core machine.
SEED_WORKERS = 4

PRESETS: dict[str, dict[str, Any]] = {
    "tuned": {},
    "seed-faithful": {
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
    },
}


def apply_preset(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` (what the user set) on top of the preset they name (default ``tuned``)."""
    name = str(values.get("scoring_preset") or "tuned").lower()
    if name not in PRESETS:
        raise ValueError(f"SCORING_PRESET must be one of {', '.join(PRESETS)}, got {name!r}")
    return {**PRESETS[name], **values, "scoring_preset": name}
