"""Which URLs the queue may call back (the worker POSTs a task's document there when it ends).

Only hosts on ``CALLBACK_ALLOWED_HOSTS`` are ever called (loopback by default), compared
literally with the URL's host, so the API cannot be used to reach arbitrary addresses: no other
spelling of an address (``127.1``, a decimal IP, a name that resolves to it) is accepted, and the
URL may carry no credentials. (The POST itself: :mod:`scoring_bench.service.callback_sender`.)
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from scoring_bench.core.errors import InvalidBody

MAX_URL_LENGTH = 2048
# A port from 0 to 65535, written without leading zeros beyond four digits (what urlsplit reads).
_PORT = r"(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4})"


def _host_pattern(host: str) -> str:
    """A host name or address as a URL spells it, letters in either case, IPv6 in brackets."""
    spelled = "".join(
        f"[{c.lower()}{c.upper()}]" if c.isalpha() else (c if c.isalnum() or c in "-:" else "\\" + c)
        for c in host
    )
    return f"\\[{spelled}\\]" if ":" in host else spelled


def callback_url_pattern(allowed_hosts: Iterable[str]) -> str:
    """The whole grammar of an allowed callback URL as one regular expression (the same in Python and
    in the API's OpenAPI document): ``http(s)://<allowed host>[:<port>]`` and then, optionally, a path,
    query or fragment of printable ASCII (spaces and other characters percent-encoded)."""
    hosts = "|".join(_host_pattern(h) for h in sorted({h.lower() for h in allowed_hosts}))
    return f"^[hH][tT][tT][pP][sS]?://(?:{hosts})(?::{_PORT})?(?:[/?#][!-~]*)?$"


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
    allowed = {h.lower() for h in allowed_hosts}
    if host not in allowed:
        return f"callback_url's host {host!r} is not allowed (CALLBACK_ALLOWED_HOSTS)"
    if re.fullmatch(callback_url_pattern(allowed), url) is None:
        return (
            "callback_url must be http(s)://<allowed host>[:<port>][/<path>] in printable ASCII "
            "(percent-encode anything else)"
        )
    return None


def check_callback_url(url: str, allowed_hosts: Iterable[str]) -> str:
    """``url`` if it may be called back, else InvalidBody (422) saying why."""
    refusal = callback_refusal(url, allowed_hosts)
    if refusal is not None:
        raise InvalidBody(refusal)
    return url
