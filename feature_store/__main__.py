"""``python -m feature_store``: seed the Redis at ``REDIS_URL`` and exit.

The compose stack's one-shot ``seed`` service (the local stack's supervisor seeds its own
Redis). Idempotent, like :func:`feature_store.seed.seed`; it waits for Redis to answer
first, so it may start together with it (``make docker-run-redis``).
"""

from __future__ import annotations

import sys
import time

import redis
from pydantic import ValidationError

from feature_store.seed import seed
from scoring_bench.core.settings import Settings


def wait_for(client: redis.Redis, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return bool(client.ping())
        except redis.RedisError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.2)


def main() -> int:
    try:
        settings = Settings()
    except ValidationError as exc:
        print(f"invalid settings:\n{exc}", file=sys.stderr)
        return 2
    if not settings.redis_url:
        print(
            "REDIS_URL is not set: nothing to seed (`make up` seeds its embedded Redis itself)",
            file=sys.stderr,
        )
        return 2
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=30, socket_connect_timeout=2)
    try:
        if not wait_for(client, settings.health_timeout_s):
            print(f"Redis did not answer PING within {settings.health_timeout_s} s", file=sys.stderr)
            return 1
        written = seed(
            client,
            settings.redis_key_prefix,
            settings.num_entities,
            settings.num_stored_features,
            show_progress=False,
        )
    finally:
        client.close()
    print(f"seeded {written} entities" if written else "feature store already seeded", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
