"""The slow-client guard's decisions (scoring_bench.core.http_limits): when a head is complete,
which body is waited for, what is refused, and the bytes of the guard's own answers."""

from __future__ import annotations

import json

import pytest

from scoring_bench.core.http_limits import (
    ClientLimits,
    body_to_prebuffer,
    body_too_large_response,
    content_length,
    error_response,
    head_length,
    head_refusal,
    header_count,
    timeout_response,
    too_large_response,
)

LIMITS = ClientLimits(read_timeout_s=10.0, max_header_bytes=16384, max_header_count=100)
HEAD = b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n"


def test_a_head_is_complete_at_its_blank_line() -> None:
    assert head_length(HEAD[:-1]) == -1
    assert head_length(HEAD) == len(HEAD)
    assert head_length(HEAD + b"[1.0]") == len(HEAD)
    assert head_length(b"") == -1


@pytest.mark.parametrize(
    "head, wait_for",
    [
        (HEAD, 5),
        (b"POST /p HTTP/1.1\r\ncontent-length:   12 \r\n\r\n", 12),
        (b"GET /p HTTP/1.1\r\nHost: x\r\n\r\n", 0),  # no body
        (b"POST /p HTTP/1.1\r\nContent-Length: 70000\r\n\r\n", 70000),
        (b"POST /p HTTP/1.1\r\nContent-Length: 2000000\r\n\r\n", 0),  # over the limit: refused
        (b"POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 0),
        (b"POST /p HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n", 0),  # waits for us
        (b"POST /p HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 0),  # odd: the parser decides
        (b"POST /p HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 0),
        (b"POST /p HTTP/1.1\r\nX-Content-Length: 5\r\n\r\n", 0),
    ],
)
def test_the_body_waited_for_in_the_event_loop(head: bytes, wait_for: int) -> None:
    assert body_to_prebuffer(head, LIMITS.max_body_bytes) == wait_for


def test_content_length_only_when_declared_plainly() -> None:
    assert content_length(HEAD) == 5
    chunked = b"POST /p HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
    assert content_length(chunked) is None
    assert content_length(b"GET / HTTP/1.1\r\n\r\n") is None


def test_header_count_and_refusals() -> None:
    assert header_count(HEAD) == 2
    assert header_count(b"GET / HTTP/1.1\r\n\r\n") == 0
    many = b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: a\r\n" % i for i in range(101)) + b"\r\n"
    assert header_count(many) == 101
    assert head_refusal(len(HEAD), 2, LIMITS) is None
    assert "16384 bytes" in str(head_refusal(16385, 2, LIMITS))
    assert "100 headers" in str(head_refusal(200, 101, LIMITS))


@pytest.mark.parametrize(
    "response, status, code",
    [
        (too_large_response("too big"), 431, "headers_too_large"),
        (timeout_response(LIMITS), 408, "request_timeout"),
        (body_too_large_response(LIMITS), 413, "payload_too_large"),
        (error_response(400, "bad", "no"), 400, "bad"),
    ],
)
def test_the_guards_answers_are_whole_http_responses_with_a_json_error(
    response: bytes, status: int, code: str
) -> None:
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0].startswith(f"HTTP/1.1 {status} ")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    assert headers["Connection"] == "close" and headers["Content-Type"] == "application/json"
    assert int(headers["Content-Length"]) == len(body)
    doc = json.loads(body)
    assert doc["error"] == code and doc["message"] and doc["details"] == []
