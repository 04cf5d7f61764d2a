"""The gthread guard's reader: a thread's reads are bounded by the request's deadline in all, not
per read (a client that sends a byte now and then still runs out of time)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from gunicorn.http.errors import NoMoreData  # type: ignore[import-untyped]

from scoring_bench.service.gthread_guard import DeadlineUnreader, RequestReadTimeout


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    server, client = socket.socketpair()
    yield server, client
    server.close()
    client.close()


def test_reads_what_arrives_in_time(pair: tuple[socket.socket, socket.socket]) -> None:
    server, client = pair
    reader = DeadlineUnreader(server, timeout_s=2.0)
    client.sendall(b"GET / HTTP/1.1\r\n\r\n")
    assert reader.read() == b"GET / HTTP/1.1\r\n\r\n"
    reader.unread(b"back")
    assert reader.read(4) == b"back"


def test_a_silent_client_runs_out_of_time(pair: tuple[socket.socket, socket.socket]) -> None:
    server, _ = pair
    reader = DeadlineUnreader(server, timeout_s=0.2)
    started = time.monotonic()
    with pytest.raises(RequestReadTimeout) as caught:
        reader.read()
    assert 0.15 < time.monotonic() - started < 2.0
    assert isinstance(caught.value, NoMoreData)  # gunicorn closes the connection quietly on it
    assert "0.2 s" in str(caught.value)


def test_a_trickle_runs_out_of_time_in_all(pair: tuple[socket.socket, socket.socket]) -> None:
    server, client = pair
    reader = DeadlineUnreader(server, timeout_s=0.6)
    stop = threading.Event()

    def trickle() -> None:
        while not stop.wait(0.1):
            client.send(b"a")

    thread = threading.Thread(target=trickle)
    thread.start()
    try:
        received = b""
        with pytest.raises(RequestReadTimeout):
            while True:
                received += reader.read()
        assert received  # it did read the drips, and still timed out
    finally:
        stop.set()
        thread.join()
