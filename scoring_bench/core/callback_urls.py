"""Which URLs the queue may call back (the worker POSTs a task's document there when it ends).

Only hosts on ``CALLBACK_ALLOWED_HOSTS`` are ever called (loopback by default), compared
literally with the URL's host, so the API cannot be used to reach arbitrary addresses: no other
spelling of an address (``127.1``, a decimal IP, a name that resolves to it) is accepted, and the
URL may carry no credentials. (The POST itself: :mod:`scoring_bench.service.callback_sender`.)
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from scoring_bench.core.errors import InvalidBody

MAX_URL_LENGTH = 2048


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
