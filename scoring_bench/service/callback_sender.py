"""The queue's callback POST (which URLs may be called: :mod:`scoring_bench.core.callback_urls`).

One urllib3 pool manager per worker process; no retries or redirects of its own (the Celery task
retries; a redirect could lead off the allowlist)."""

from __future__ import annotations

from typing import Any

import orjson
import urllib3

JSON_HEADERS = {"Content-Type": "application/json"}


class CallbackFailed(Exception):
    """The receiver could not take the callback now (unreachable, timeout, 429, 5xx): retry."""


class CallbackRefused(Exception):
    """The receiver refused the callback for good (another 3xx or 4xx): do not retry."""


class CallbackSender:
    def __init__(self, timeout_s: float) -> None:
        self.http = urllib3.PoolManager(num_pools=16, retries=False, timeout=urllib3.Timeout(total=timeout_s))

    def post(self, url: str, document: dict[str, Any]) -> int:
        try:
            resp = self.http.request(
                "POST", url, body=orjson.dumps(document), headers=JSON_HEADERS, redirect=False
            )
        except urllib3.exceptions.HTTPError as exc:
            raise CallbackFailed(f"POST {url}: {exc}") from None
        if resp.status == 429 or resp.status >= 500:
            raise CallbackFailed(f"POST {url}: HTTP {resp.status}")
        if resp.status >= 300:
            raise CallbackRefused(f"POST {url}: HTTP {resp.status}")
        return resp.status
