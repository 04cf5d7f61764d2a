"""The garbage collector of the event-loop scoring handlers (api_scoring_async, api_scoring_batched)."""

from __future__ import annotations

import gc

from scoring_bench.core.settings import Settings


def tune_gc(settings: Settings) -> None:
    """Fewer, cheaper garbage collections once started. Most of a request's objects die by reference count,
    yet CPython's young collection runs every 700 net allocations and the full one walks every object the
    imports made (FastAPI, pydantic, aiohttp, redis): at 64 connections that was about a tenth of the
    handler's CPU (gc callbacks, 2-core VM). The start-up objects are frozen (never collected: they live as
    long as the process) and the young threshold is SCORING_ASYNC_GC_THRESHOLD."""
    gc.freeze()
    if settings.scoring_async_gc_threshold == 0:
        gc.disable()
    else:
        _, older, oldest = gc.get_threshold()
        gc.set_threshold(settings.scoring_async_gc_threshold, older, oldest)
