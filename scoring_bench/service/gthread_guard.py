"""gunicorn's gthread worker with a slow-client guard (SLOW_CLIENT_GUARD, doc/limits.md).

Why: gunicorn 27's gthread worker hands every new connection to a thread, which waits up to 5 s
for a first byte and then reads the request with a blocking socket and no timeout. A client that
sends its headers or its body one byte a second holds a thread for as long as it likes: on the
test stack 300 such clients left no thread for anyone else (a normal user's requests timed out),
and 1,000 connections that sent nothing made a normal request wait 9.5 s or more.

What this worker changes, and nothing else (parsing, the app, keep-alive stay gunicorn's):

* The worker's event loop (its main thread, which already polls the listening sockets and the
  kept-alive connections) reads a new connection's first request — its head, and a body with a
  Content-Length of at most MAX_BODY_BYTES — before a thread sees it (a kept-alive connection's
  next request goes to a thread at once, as in gthread, bounded by the deadline below). A thread
  only gets a new connection's request once its bytes are there, so slow clients cost a buffer,
  not a thread. The buffers of one worker are bounded
  (BUFFER_BUDGET_BYTES): past that, bodies go to a thread as they would without the guard.
* The whole request must arrive within REQUEST_READ_TIMEOUT_S of its first byte, else a 408 and
  the connection closed; a head over MAX_HEADER_BYTES or with more than MAX_HEADER_COUNT headers
  gets a 431; a declared body over MAX_BODY_BYTES a 413 before it is read. A body that a thread
  reads (chunked, ``Expect: 100-continue``, over the budget) is bounded by the same deadline
  (:class:`DeadlineUnreader`). A connection that sends nothing is closed after KEEPALIVE_S, as
  gthread does with an idle kept-alive one.
"""

from __future__ import annotations

import errno
import selectors
import socket
import time
from functools import partial
from typing import Any

from gunicorn.http.errors import NoMoreData  # type: ignore[import-untyped]
from gunicorn.http.unreader import SocketUnreader  # type: ignore[import-untyped]
from gunicorn.workers.gthread import TConn, ThreadWorker  # type: ignore[import-untyped]

from scoring_bench.core.http_limits import (
    ClientLimits,
    body_to_prebuffer,
    body_too_large_response,
    content_length,
    head_length,
    head_refusal,
    header_count,
    timeout_response,
    too_large_response,
)
from scoring_bench.core.settings import Settings

RECV_BYTES = 64 * 1024
LINGER_S = 2.0  # after a 431/408: read and drop what the client still sends, so it sees the answer
LINGER_BYTES = 64 * 1024
SWEEP_EVERY_S = 0.25
BUFFER_BUDGET_BYTES = 64 << 20  # of requests held in one worker's event loop at once


class RequestReadTimeout(NoMoreData):  # type: ignore[misc]
    """The request's deadline passed while a thread read it: gunicorn closes the connection
    quietly while it reads the head; inside the app (the body) werkzeug turns it into
    ClientDisconnected, which the Flask adapter answers 408 (scoring_bench.service.flask_adapter)."""

    def __init__(self, message: str) -> None:
        super().__init__()
        self.message = message

    def __str__(self) -> str:
        return self.message


class DeadlineUnreader(SocketUnreader):  # type: ignore[misc]
    """gunicorn's socket reader, each read bounded by what is left of the request's deadline."""

    def __init__(self, sock: socket.socket, timeout_s: float) -> None:
        super().__init__(sock)
        self.timeout_s = timeout_s
        self.deadline = time.monotonic() + timeout_s

    def chunk(self, size_hint: int | None = None) -> bytes:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise RequestReadTimeout(f"the request was not received within {self.timeout_s:g} s")
        self.sock.settimeout(remaining)
        try:
            data: bytes = super().chunk(size_hint)
        except TimeoutError:
            raise RequestReadTimeout(f"the request was not received within {self.timeout_s:g} s") from None
        return data


class GuardedConn(TConn):  # type: ignore[misc]
    """A connection and what the event loop has read of its next request."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.buffer = bytearray()
        self.deadline = 0.0  # of the request being read, or of the idle wait for one
        self.started = False  # a byte of the next request has arrived
        self.registered = False
        self.lingering = 0  # > 0: answered and closing; bytes read and dropped since
        self.read_timeout_s = 0.0

    def init(self) -> None:
        """Runs in the thread before every request: the buffered bytes go to gunicorn's parser,
        and its reads are bounded by the request's deadline."""
        super().init()
        if not self.initialized or self.parser is None or not hasattr(self.parser, "unreader"):
            return
        unreader = self.parser.unreader
        if not isinstance(unreader, DeadlineUnreader):
            unreader = DeadlineUnreader(self.sock, self.read_timeout_s)
            unreader.buf = self.parser.unreader.buf
            self.parser.unreader = unreader
        unreader.deadline = self.deadline
        if self.buffer:
            unreader.unread(bytes(self.buffer))
            self.buffer.clear()

    def fresh(self, deadline: float) -> None:
        self.buffer.clear()
        self.started = False
        self.deadline = deadline


class GuardedThreadWorker(ThreadWorker):  # type: ignore[misc]
    """gthread, with each request's bytes read in the event loop first (see the module)."""

    def init_process(self) -> None:
        settings = Settings()
        self.limits = ClientLimits(
            settings.request_read_timeout_s,
            settings.max_header_bytes,
            settings.max_header_count,
            settings.max_body_bytes,
        )
        self.waiting: set[GuardedConn] = set()
        self.buffered = 0  # bytes in the buffers of waiting connections
        self.next_sweep = 0.0
        super().init_process()

    # --- connections in, and kept-alive ones waking up ---------------------------------------

    def accept(self, listener: socket.socket) -> None:
        try:
            sock, addr = listener.accept()
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                return
            raise
        self.nr_conns += 1
        conn = GuardedConn(self.cfg, sock, addr, listener.getsockname())
        conn.read_timeout_s = self.limits.read_timeout_s
        conn.fresh(time.monotonic() + self.cfg.keepalive)
        self._wait(conn)

    def on_client_socket_readable(self, conn: GuardedConn, client: socket.socket) -> None:
        """A kept-alive connection's next request goes to a thread at once, as in gthread: reading
        it in the event loop first cost the sync handler 10-20 % of its throughput under load (one
        more GIL hand-off per request for the loop, measured: doc/limits.md). The thread's reads are
        bounded by the request's deadline (:class:`DeadlineUnreader`); new connections, the
        slow-client attack's way in, are read in the loop."""
        conn.fresh(time.monotonic() + self.limits.read_timeout_s)
        super().on_client_socket_readable(conn, client)

    def finish_request(self, conn: GuardedConn, fs: Any) -> None:
        """A request is done; a pipelined one already buffered goes back to a thread at once, with
        a deadline of its own."""
        conn.buffer.clear()
        conn.deadline = time.monotonic() + self.limits.read_timeout_s
        super().finish_request(conn, fs)

    # --- the event loop's reads ----------------------------------------------------------------

    def _wait(self, conn: GuardedConn) -> None:
        if not conn.registered:
            self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_readable, conn))
            conn.registered = True
        self.waiting.add(conn)

    def _unwait(self, conn: GuardedConn) -> None:
        if conn.registered:
            try:
                self.poller.unregister(conn.sock)
            except (KeyError, ValueError, OSError):
                pass
            conn.registered = False
        self.waiting.discard(conn)

    def _on_readable(self, conn: GuardedConn, _sock: socket.socket) -> None:
        self._readable(conn)

    def _readable(self, conn: GuardedConn) -> None:
        try:
            data = conn.sock.recv(RECV_BYTES)
        except (BlockingIOError, InterruptedError):
            self._wait(conn)
            return
        except OSError:
            self._drop(conn)
            return
        if not data:
            self._drop(conn)
            return
        if conn.lingering:
            conn.lingering += len(data)
            if conn.lingering > LINGER_BYTES:
                self._drop(conn)
            return
        if not conn.started:
            conn.started = True
            conn.deadline = time.monotonic() + self.limits.read_timeout_s
        conn.buffer += data
        self.buffered += len(data)
        self._decide(conn)

    def _decide(self, conn: GuardedConn) -> None:
        """Hand the request to a thread, refuse it, or wait for more of it."""
        head = head_length(conn.buffer)
        if head < 0:
            if len(conn.buffer) > self.limits.max_header_bytes:
                too_big = f"the head is over {self.limits.max_header_bytes} bytes"
                self._answer(conn, too_large_response(too_big))
            else:
                self._wait(conn)
            return
        refusal = head_refusal(head, header_count(conn.buffer[:head]), self.limits)
        if refusal is not None:
            self._answer(conn, too_large_response(refusal))
            return
        declared = content_length(conn.buffer[:head])
        if declared is not None and declared > self.limits.max_body_bytes:
            self._answer(conn, body_too_large_response(self.limits))
            return
        body = body_to_prebuffer(conn.buffer[:head], self.limits.max_body_bytes)
        if len(conn.buffer) - head < body and self.buffered <= BUFFER_BUDGET_BYTES:
            self._wait(conn)
            return
        self._unwait(conn)
        self.buffered -= len(conn.buffer)  # handed to gunicorn's parser in the thread (GuardedConn.init)
        conn.data_ready = True  # gthread's handle() waits for no first byte
        self.enqueue_req(conn)

    def _release(self, conn: GuardedConn) -> None:
        self.buffered -= len(conn.buffer)
        conn.buffer.clear()

    def _answer(self, conn: GuardedConn, response: bytes) -> None:
        """Send the guard's own answer, then linger a little reading what the client still sends:
        closing with unread bytes would reset the connection and lose the answer."""
        self._release(conn)
        try:
            conn.sock.send(response)
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._drop(conn)
            return
        conn.lingering = 1
        conn.deadline = time.monotonic() + LINGER_S
        self._wait(conn)

    def _drop(self, conn: GuardedConn) -> None:
        self._release(conn)
        self._unwait(conn)
        self.nr_conns -= 1
        conn.close()

    # --- deadlines: gthread's main loop calls this every turn -----------------------------------

    def murder_pending(self) -> None:
        super().murder_pending()
        now = time.monotonic()
        if now < self.next_sweep and self.alive:
            return
        self.next_sweep = now + SWEEP_EVERY_S
        for conn in [c for c in self.waiting if c.deadline <= now or (not self.alive and not c.started)]:
            if conn.started and not conn.lingering and self.alive:
                self._answer(conn, timeout_response(self.limits))
            else:
                self._drop(conn)
