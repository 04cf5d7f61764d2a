"""The queue's depth over time: how many tasks wait in the broker, sampled while load runs.

Redis broker: kombu keeps a queue as a list per priority, under Celery's ``global_keyprefix``
(``<queue key prefix><queue name>``, then ``<name>\\x06\\x16<priority>`` for priorities 3, 6, 9);
the depth is the sum of their LLENs. RabbitMQ: a passive ``queue_declare``'s message count.
Tasks a worker has already reserved (one per pool slot) are not waiting: they are not counted.
Rows are ``t`` (epoch s), ``depth``.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from pathlib import Path

import redis
from kombu import Connection

from benchmark.sampler import BackgroundSampler
from scoring_bench.service.queue import is_redis_url
from scoring_bench.core.settings import Settings

KOMBU_PRIORITY_SEPARATOR = "\x06\x16"
KOMBU_PRIORITY_STEPS = (0, 3, 6, 9)  # kombu's default: priority 0 is the plain list

Reader = Callable[[], int | None]


def redis_queue_keys(settings: Settings) -> list[str]:
    """Every Redis list that holds the queue's waiting tasks."""
    base = f"{settings.queue_key_prefix}{settings.queue_name}"
    return [base if step == 0 else f"{base}{KOMBU_PRIORITY_SEPARATOR}{step}" for step in KOMBU_PRIORITY_STEPS]


def depth_reader(settings: Settings) -> tuple[Reader, Callable[[], None]]:
    """A function reading the queue's depth (None when the broker does not answer), and its closer."""
    url = settings.queue_broker_url
    if is_redis_url(url):
        client = redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
        keys = redis_queue_keys(settings)

        def read_redis() -> int | None:
            try:
                pipe = client.pipeline(transaction=False)
                for key in keys:
                    pipe.llen(key)
                return int(sum(pipe.execute()))
            except redis.RedisError:
                return None

        return read_redis, client.close
    conn = Connection(url, connect_timeout=1.0)

    def read_amqp() -> int | None:
        try:
            channel = conn.default_channel
            return int(channel.queue_declare(queue=settings.queue_name, passive=True).message_count)
        except Exception:  # noqa: BLE001 - any broker error is a missing sample, never a failed run
            return None

    return read_amqp, conn.release


class QueueDepthSampler(BackgroundSampler):
    """The queue's depth every ``interval_s``, until the ``with`` block ends."""

    def __init__(self, path: Path, settings: Settings, interval_s: float = 0.25) -> None:
        super().__init__(path, interval_s)
        self.settings = settings

    def _run(self) -> None:
        read, close = depth_reader(self.settings)
        try:
            with open(self.path, "w", newline="") as f:
                writer = csv.writer(f)
                writer.writerow(["t", "depth"])
                while True:
                    depth = read()
                    if depth is not None:
                        writer.writerow([f"{time.time():.3f}", depth])
                        f.flush()
                    if self._stop.wait(self.interval_s):
                        break
        finally:
            close()
