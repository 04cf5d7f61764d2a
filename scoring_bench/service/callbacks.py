"""Callbacks of the queue architecture: which URLs may be called, and the POST itself.

Only hosts on ``CALLBACK_ALLOWED_HOSTS`` are ever called (loopback by default), compared
literally with the URL's host, so the API cannot be used to reach arbitrary addresses: no other
spelling of an address (``127.1``, a decimal IP, a name that resolves to it) is accepted, the
URL may carry no credentials, and redirects are not followed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import orjson
import urllib3

from scoring_bench.core.errors import InvalidBody

MAX_URL_LENGTH = 2048
JSON_HEADERS = {"Content-Type": "application/json"}


def callback_refusal(url: str, allowed_hosts: Iterable[str]) -> str | None:
    """Why ``url`` may not be called back, or None when it may."""
    if len(url) > MAX_URL_LENGTH:
        return f"callback_url is longer than {MAX_URL_LENGTH} characters"
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError for a port out of range
    except ValueError as exc:
        return f"callback_url is not a valid URL: {exc}"
    if parts.scheme not in ("http", "https"):
        return "callback_url must be an http:// or https:// URL"
    if parts.username is not None or parts.password is not None:
        return "callback_url may not carry credentials"
    host = parts.hostname or ""
    if not host:
        return "callback_url has no host"
    if host not in {h.lower() for h in allowed_hosts}:
        return f"callback_url's host {host!r} is not allowed (CALLBACK_ALLOWED_HOSTS)"
    return None


def check_callback_url(url: str, allowed_hosts: Iterable[str]) -> str:
    """``url`` if it may be called back, else InvalidBody (422) saying why."""
    refusal = callback_refusal(url, allowed_hosts)
    if refusal is not None:
        raise InvalidBody(refusal)
    return url


class CallbackFailed(Exception):
    """The receiver could not take the callback now (unreachable, timeout, 429, 5xx): retry."""


class CallbackRefused(Exception):
    """The receiver refused the callback for good (another 3xx or 4xx): do not retry."""


class CallbackSender:
    """One urllib3 pool manager per worker process; no retries or redirects of its own."""

    def __init__(self, timeout_s: float) -> None:
        self.http = urllib3.PoolManager(num_pools=16, retries=False, timeout=urllib3.Timeout(total=timeout_s))

    def post(self, url: str, document: dict[str, Any]) -> int:
        try:
            resp = self.http.request("POST", url, body=orjson.dumps(document), headers=JSON_HEADERS,
                                     redirect=False)
        except urllib3.exceptions.HTTPError as exc:
            raise CallbackFailed(f"POST {url}: {exc}") from None
        if resp.status == 429 or resp.status >= 500:
            raise CallbackFailed(f"POST {url}: HTTP {resp.status}")
        if resp.status >= 300:
            raise CallbackRefused(f"POST {url}: HTTP {resp.status}")
        return resp.status
