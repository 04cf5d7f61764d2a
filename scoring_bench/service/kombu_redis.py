"""kombu's Redis transport with one Redis client per channel (``QUEUE_BROKER_CLIENT=channel``).

kombu's Redis channel makes a new ``redis.Redis`` client object for every operation that does not bring
its own (``Channel.conn_or_acquire``): the API's publish (LPUSH), and the worker's record of each message
it delivers as unacked and its ack. The connections come from the channel's pool either way; what is new
each time is the client object, and redis-py's constructor builds its response-callback table and event
dispatcher anew (~60 µs of CPU each on a 2-core VM; three a task, found by profiling the queue, doc/queue.md
"Cost per task"). This channel makes the client once and uses it for every such operation: a client is
only the pool plus its settings, and redis-py's clients are thread-safe (each command takes a connection
from the pool). It is made again when the channel's pool is (after a fork, or a reconnect).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):
    _shared_client: Any = None
    _shared_client_pool: Any = None

    @contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
        if client:
            yield client
            return
        pool = self.pool
        if self._shared_client is None or self._shared_client_pool is not pool:
            self._shared_client, self._shared_client_pool = self._create_client(), pool
        yield self._shared_client


class Transport(kombu_redis.Transport):
    Channel = Channel


TRANSPORT = f"{__name__}:{Transport.__name__}"
