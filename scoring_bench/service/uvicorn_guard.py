"""uvicorn's HTTP protocols with a slow-client guard (SLOW_CLIENT_GUARD, doc/limits.md).

Why: uvicorn 0.54 has no timeout on receiving a request. Its keep-alive timer is armed only after a
response and cancelled by any byte that arrives, so a connection that sends nothing, or sends its
headers or body one byte a second, stays open for good. On one event loop that costs a socket and a
few KiB, not a thread — a normal user was served as fast during an attack of 300 such clients — but
nothing ever closes them. And with httptools (the default parser here) uvicorn accepts a head of
any size (a 1 MiB header was answered 200) and any number of headers.

What these protocols add to uvicorn's own (``--http scoring_bench.service.uvicorn_guard:...``):

* the whole request must arrive within REQUEST_READ_TIMEOUT_S of its first byte: a head still
  incomplete then gets a 408; a body still incomplete closes the connection (the handler sees the
  client go and answers 408 to no one);
* a connection that sends nothing is closed after KEEPALIVE_S, as a kept-alive one is;
* httptools: a head over MAX_HEADER_BYTES, or with more than MAX_HEADER_COUNT headers, gets a 431
  with the JSON error body (h11 bounds the head itself at MAX_HEADER_BYTES, the servers pass it as
  ``--h11-max-incomplete-event-size``, and answers 400).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from scoring_bench.core.http_limits import ClientLimits, head_refusal, timeout_response, too_large_response
from scoring_bench.core.settings import Settings

LINGER_S = 2.0  # after the guard's own answer: wait for the client to close, then close
log = logging.getLogger("scoring_bench.guard")


@functools.cache
def client_limits() -> ClientLimits:
    """The limits of this server process (its settings, read once)."""
    settings = Settings()
    return ClientLimits(settings.request_read_timeout_s, settings.max_header_bytes, settings.max_header_count)


class HeadTooLarge(Exception):
    """Raised in a parser callback; httptools stops and uvicorn calls send_400_response."""


class _RequestDeadline:
    """The deadline and the guard's own answers, for both protocols. The subclasses say whether a
    request is partly received (:meth:`_receiving`) and whether its head is complete."""

    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    timeout_keep_alive: int
    timeout_keep_alive_task: asyncio.TimerHandle | None
    timeout_keep_alive_handler: Any

    def _guard_init(self) -> None:
        self.limits = client_limits()
        self._deadline: asyncio.TimerHandle | None = None
        self._answered = False  # the guard answered; the connection closes

    def _idle_until_first_byte(self) -> None:
        """uvicorn arms its keep-alive timer only after a response; a new connection gets it too."""
        self.timeout_keep_alive_task = self.loop.call_later(
            self.timeout_keep_alive, self.timeout_keep_alive_handler
        )

    def _arm(self) -> None:
        if self._deadline is None:
            self._deadline = self.loop.call_later(self.limits.read_timeout_s, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _head_complete(self) -> bool:
        raise NotImplementedError

    def _expired(self) -> None:
        self._deadline = None
        if self.transport.is_closing() or self._answered:
            return
        log.info("closing a connection whose request did not arrive in %g s", self.limits.read_timeout_s)
        if self._head_complete():  # the handler waits for the body: it sees the client go
            self.transport.close()
        else:
            self._answer(timeout_response(self.limits))

    def _answer(self, response: bytes) -> None:
        """Send the guard's answer and end the connection: write, half-close, drop what the client
        still sends for a moment (so it reads the answer rather than a reset), close."""
        self._answered = True
        self._disarm()
        self.transport.write(response)
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER_S, self.transport.close)


class GuardedHttpToolsProtocol(_RequestDeadline, HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._guard_init()
        self._in_message = False
        self._head_done = False
        self._head_bytes = 0  # raw bytes of an incomplete head
        self._head_size = 0  # what the parser reported of it
        self._header_count = 0
        self._refusal: str | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._idle_until_first_byte()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._answered:
            return
        self._arm()
        super().data_received(data)
        if self._answered or self.transport.is_closing():
            return
        if not self._in_message and not self._head_done:
            return  # only blank lines so far: the deadline runs
        if self._in_message and not self._head_done:
            self._head_bytes += len(data)
            if self._head_bytes > self.limits.max_header_bytes:
                self._answer(too_large_response(f"the head is over {self.limits.max_header_bytes} bytes"))

    def _head_complete(self) -> bool:
        return self._head_done

    # parser callbacks

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_message, self._head_done = True, False
        self._head_bytes = self._head_size = self._header_count = 0

    def on_url(self, url: bytes) -> None:
        self._head_size += len(url)
        self._check_head()
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_size += len(name) + len(value) + 4
        self._header_count += 1
        self._check_head()
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._head_done = True
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_message = self._head_done = False
        self._disarm()

    def _check_head(self) -> None:
        refusal = head_refusal(self._head_size, self._header_count, self.limits)
        if refusal is not None:
            self._refusal = refusal
            raise HeadTooLarge(refusal)

    def send_400_response(self, msg: str) -> None:
        if self._refusal is None:
            super().send_400_response(msg)
        else:
            self._answer(too_large_response(self._refusal))


class GuardedH11Protocol(_RequestDeadline, H11Protocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._guard_init()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._idle_until_first_byte()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._answered:
            return
        self._arm()
        super().data_received(data)
        state = self.conn.their_state
        received = state in (h11.DONE, h11.MUST_CLOSE, h11.CLOSED)
        if received or (state is h11.IDLE and not self.conn.trailing_data[0]):
            self._disarm()

    def _head_complete(self) -> bool:
        return self.conn.their_state is not h11.IDLE
