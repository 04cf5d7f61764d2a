"""Limits on what a client may send before a handler sees its request (the slow-client guard).

The servers' guards (:mod:`scoring_bench.service.gthread_guard` for gunicorn's gthread worker,
:mod:`scoring_bench.service.uvicorn_guard` for uvicorn) decide from these pure functions: when a
request's head (request line and headers) is complete, whether the body that follows is worth
waiting for in the server's event loop before a thread sees the request, whether the head is too
large, and the bytes of the answer they send themselves (a 431 or 408 with the usual JSON error
body). A real HTTP parser (gunicorn's, httptools) still parses every request: these functions only
choose *when* to hand the bytes over, so a wrong guess costs time, never a wrong parse.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import orjson

from scoring_bench.core.errors import error_body

HEAD_END = b"\r\n\r\n"
# One Content-Length header (RFC 9110 8.6); anything odd is left to the real parser.
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length[ \t]*:[ \t]*([0-9]{1,12})[ \t]*(?=\r\n)", re.IGNORECASE)
_TRANSFER_ENCODING = re.compile(rb"\r\ntransfer-encoding[ \t]*:", re.IGNORECASE)
_EXPECT_CONTINUE = re.compile(rb"\r\nexpect[ \t]*:[ \t]*100-continue", re.IGNORECASE)
REASONS = {
    400: "Bad Request",
    408: "Request Timeout",
    413: "Content Too Large",
    431: "Request Header Fields Too Large",
}


@dataclass(frozen=True)
class ClientLimits:
    """What a client may send: the whole request within ``read_timeout_s`` of its first byte, a
    head of at most ``max_header_bytes`` and ``max_header_count`` headers, a body of at most
    ``max_body_bytes`` (MAX_BODY_BYTES: a larger declared one is refused before it is read)."""

    read_timeout_s: float
    max_header_bytes: int
    max_header_count: int
    max_body_bytes: int = 1 << 20


def head_length(buffer: bytes | bytearray) -> int:
    """The length of the head at the start of ``buffer`` (up to and with its blank line), or -1
    while it is incomplete."""
    end = buffer.find(HEAD_END)
    return -1 if end < 0 else end + len(HEAD_END)


def content_length(head: bytes | bytearray) -> int | None:
    """The body's length when the head declares it plainly: one Content-Length, no
    Transfer-Encoding; None otherwise (no body, a chunked one, or something odd for the parser)."""
    if _TRANSFER_ENCODING.search(head):
        return None
    lengths = _CONTENT_LENGTH.findall(head)
    return int(lengths[0]) if len(lengths) == 1 else None


def body_to_prebuffer(head: bytes | bytearray, limit: int) -> int:
    """How many body bytes to wait for before the request goes to a thread: its Content-Length
    when declared plainly and no larger than ``limit``; 0 (go at once) for no body, a chunked or
    odd one, a larger one, or a client that waits for ``100 Continue`` before it sends its body
    (a thread reads those, within the request's deadline)."""
    if _EXPECT_CONTINUE.search(head):
        return 0
    length = content_length(head)
    return length if length is not None and length <= limit else 0


def head_refusal(head_bytes: int, header_count: int, limits: ClientLimits) -> str | None:
    """Why a head of this size and header count is refused (431), or None."""
    if head_bytes > limits.max_header_bytes:
        return f"the request line and headers are larger than {limits.max_header_bytes} bytes"
    if header_count > limits.max_header_count:
        return f"the request has more than {limits.max_header_count} headers"
    return None


def header_count(head: bytes | bytearray) -> int:
    """Header lines in a complete head (the request line and the blank line not counted)."""
    return max(bytes(head).strip(b"\r\n").count(b"\r\n"), 0)


def error_response(status: int, code: str, message: str) -> bytes:
    """A whole HTTP/1.1 answer with the JSON error body, closing the connection: what a server's
    guard sends itself when no handler ever saw the request."""
    body = orjson.dumps(error_body(code, message))
    head = (
        f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


def too_large_response(reason: str) -> bytes:
    return error_response(431, "headers_too_large", reason)


def body_too_large_response(limits: ClientLimits) -> bytes:
    return error_response(413, "payload_too_large", f"the body is larger than {limits.max_body_bytes} bytes")


def timeout_response(limits: ClientLimits) -> bytes:
    return error_response(
        408, "request_timeout", f"the request was not received within {limits.read_timeout_s:g} s"
    )
