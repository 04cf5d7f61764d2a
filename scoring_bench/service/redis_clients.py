"""The Redis clients of every service, made one way: the sync scorer, the async scorer (and the
seed's blocking client inside it) and the queue API's result store get the same pool options, so
a timeout or pool size means the same thing in every architecture."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry

from scoring_bench.core.settings import Settings

NO_CONNECTION = "No connection available."  # what redis-py's blocking pool raises when its wait ran out


def pool_exhausted(exc: BaseException) -> bool:
    """The pool had no free connection within its wait (every connection busy: a burst), as opposed to a
    Redis that does not answer."""
    return isinstance(exc, redis.exceptions.ConnectionError) and str(exc) == NO_CONNECTION


def pool_options(settings: Settings, pool_wait_s: float | None = None) -> dict[str, Any]:
    """A blocking pool of ``REDIS_POOL_SIZE`` connections: a request waits up to ``pool_wait_s``
    (default ``REDIS_TIMEOUT_S``, as for an answer) for a free one; connecting may take half a second
    at most; one immediate retry for a stale connection, no backoff."""
    return {
        "max_connections": settings.redis_pool_size,
        "timeout": settings.redis_timeout_s if pool_wait_s is None else pool_wait_s,
        "socket_timeout": settings.redis_timeout_s,
        "socket_connect_timeout": min(settings.redis_timeout_s, 0.5),
    }


def sync_redis(settings: Settings, url: str | None = None) -> redis.Redis:
    """A redis-py client of ``url`` (default: the feature store)."""
    pool = redis.BlockingConnectionPool.from_url(
        url or settings.feature_store_url, retry=Retry(NoBackoff(), 1), **pool_options(settings)
    )
    return redis.Redis(connection_pool=pool)


class ClosedAwareConnection(aioredis.Connection):
    """redis.asyncio's TCP connection, told that uvloop says "closed" with a RuntimeError.

    Writing to a transport whose peer has gone, uvloop raises ``RuntimeError: unable to perform operation
    on <TCPTransport closed=True ...>; the handler is closed`` where asyncio raises ConnectionResetError
    (MagicStack/uvloop#506). redis-py turns only OSErrors into its ConnectionError, so while Redis
    restarted, a read of the queue's result store escaped as a 500 instead of a 503 (found by the faults
    experiment). Here such a write is a ConnectionResetError, and the connection is dropped as for any
    other broken socket."""

    async def _send_packed_command(self, command: Iterable[bytes]) -> None:
        try:
            await super()._send_packed_command(command)
        except RuntimeError as exc:
            writer = self._writer
            if writer is not None and writer.transport.is_closing():
                raise ConnectionResetError(f"the connection to Redis is closed: {exc}") from exc
            raise


def async_redis(
    settings: Settings, url: str | None = None, pool_wait_s: float | None = None
) -> aioredis.Redis:
    """A ``redis.asyncio`` client of ``url`` (default: the feature store); made inside the
    running event loop. A ``redis://`` URL's connections know uvloop's closed transports
    (:class:`ClosedAwareConnection`). ``pool_wait_s``: see :func:`pool_options`."""
    url = url or settings.feature_store_url
    options: dict[str, Any] = {"retry": AsyncRetry(NoBackoff(), 1), **pool_options(settings, pool_wait_s)}
    if urlsplit(url).scheme == "redis":
        options["connection_class"] = ClosedAwareConnection
    pool = aioredis.BlockingConnectionPool.from_url(url, **options)
    return aioredis.Redis(connection_pool=pool)
