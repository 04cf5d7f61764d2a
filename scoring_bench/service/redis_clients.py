"""The Redis clients of every service, made one way: the sync scorer, the async scorer (and the
seed's blocking client inside it) and the queue API's result store get the same pool options, so
a timeout or pool size means the same thing in every architecture."""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry

from scoring_bench.core.settings import Settings


def pool_options(settings: Settings) -> dict[str, Any]:
    """A blocking pool of ``REDIS_POOL_SIZE`` connections: a request waits up to
    ``REDIS_TIMEOUT_S`` for a free one, as for an answer; connecting may take half a second at
    most; one immediate retry for a stale connection, no backoff."""
    return {
        "max_connections": settings.redis_pool_size,
        "timeout": settings.redis_timeout_s,
        "socket_timeout": settings.redis_timeout_s,
        "socket_connect_timeout": min(settings.redis_timeout_s, 0.5),
    }


def sync_redis(settings: Settings, url: str | None = None) -> redis.Redis:
    """A redis-py client of ``url`` (default: the feature store)."""
    pool = redis.BlockingConnectionPool.from_url(
        url or settings.feature_store_url, retry=Retry(NoBackoff(), 1), **pool_options(settings)
    )
    return redis.Redis(connection_pool=pool)


def async_redis(settings: Settings, url: str | None = None) -> aioredis.Redis:
    """A ``redis.asyncio`` client of ``url`` (default: the feature store); made inside the
    running event loop."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url or settings.feature_store_url, retry=AsyncRetry(NoBackoff(), 1), **pool_options(settings)
    )
    return aioredis.Redis(connection_pool=pool)
