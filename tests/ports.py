"""Free ports for the tests' stacks and servers on loopback.

``bind(("127.0.0.1", 0))`` answers a port free at that moment; once that socket is closed, the next
``bind`` may answer the same port again (eight picks in a row collided about once in 500 stacks on
this machine's kernel), and nothing stops a port handed to a stack that has not bound it yet from
being handed out again, here or in another process. Two services of one stack given the same port is
how a queue API's health check came to be answered by a Flask model API. So:

- the ports come from below the kernel's ephemeral range, which ``bind(0)`` and every outgoing
  connection draw from: no client socket and no other ``bind(0)`` takes one of them meanwhile;
- each process walks that range from its own starting point (a pytest-xdist worker from its own
  slice, any other process from a random one), trying each port with a real ``bind``;
- every port a call hands out is picked while the sockets of all the others are still held (distinct
  within the call), and a process never hands a port out twice (distinct across the stacks of a session).
"""

from __future__ import annotations

import os
import random
import socket
import threading
from contextlib import ExitStack
from pathlib import Path

LOWEST = 10_000  # above the well-known and registered ports our services' defaults use (5000-9090)
SLICES = 8  # pytest-xdist workers gw0..gw7 start in slices of their own
_MAX_TRIES = 2_000  # ports tried in one call before giving up


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def _start(span: range) -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")  # "gw0", "gw1", ...
    if worker.removeprefix("gw").isdigit():
        size = len(span) // SLICES
        return span.start + (int(worker.removeprefix("gw")) % SLICES) * size + random.randrange(size // 4)
    return random.randrange(span.start, span.stop)


class _Allocator:
    def __init__(self) -> None:
        self.span = range(LOWEST, _ephemeral_low())
        self.next = _start(self.span) if len(self.span) >= 1000 else 0
        self.handed_out: set[int] = set()
        self.lock = threading.Lock()

    def candidate(self) -> int:
        """The next port to try: the walk through the range, or the kernel's pick where the range is
        too small (an ephemeral range that starts low)."""
        if self.next == 0:
            return 0
        port = self.next
        self.next = port + 1 if port + 1 < self.span.stop else self.span.start
        return port

    def ports(self, count: int, host: str) -> list[int]:
        ports: list[int] = []
        with self.lock, ExitStack() as held:
            for _ in range(_MAX_TRIES):
                if len(ports) == count:
                    break
                port = self.candidate()
                if port in self.handed_out:
                    continue
                sock = held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
                try:
                    sock.bind((host, port))
                except OSError:
                    continue  # in use (or in TIME_WAIT): the next one
                port = int(sock.getsockname()[1])
                if port not in self.handed_out:
                    ports.append(port)
            if len(ports) < count:
                raise RuntimeError(f"no {count} fresh free ports on {host} after {_MAX_TRIES} tries")
            self.handed_out.update(ports)
        return ports


_allocator = _Allocator()


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct ports free on ``host`` now, none handed out before by this process."""
    return _allocator.ports(count, host)


def free_port(host: str = "127.0.0.1") -> int:
    """One free port, never handed out before by this process."""
    return free_ports(1, host)[0]
