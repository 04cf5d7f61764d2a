"""Free ports for the tests' stacks and servers on loopback.

``bind(("127.0.0.1", 0))`` answers a port free at that moment; once that socket is closed, the next
``bind`` may answer the same port again (eight picks in a row collided about once in 500 stacks on
this machine's kernel), and nothing stops a port handed to a stack that has not bound it yet from
being handed out again. Two services of one stack given the same port is how a queue API's health
check came to be answered by a Flask model API. So: every port a call hands out is picked while the
sockets of all the others are still held (distinct within the call), and this process never hands a
port out twice (distinct across the stacks of one test session).
"""

from __future__ import annotations

import socket
import threading
from contextlib import ExitStack

_handed_out: set[int] = set()
_lock = threading.Lock()
_MAX_TRIES = 500  # sockets held at once, at most


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct ports free on ``host`` now, none handed out before by this process."""
    ports: list[int] = []
    with _lock, ExitStack() as held:
        binds = 0
        while len(ports) < count:
            if binds == _MAX_TRIES:
                raise RuntimeError(f"no {count} fresh free ports on {host} after {_MAX_TRIES} binds")
            binds += 1
            sock = held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((host, 0))
            port = int(sock.getsockname()[1])
            if port not in _handed_out:
                ports.append(port)
            # a port seen before stays bound (held) to the end: the next bind answers another one
        _handed_out.update(ports)
    return ports


def free_port(host: str = "127.0.0.1") -> int:
    """One free port, never handed out before by this process."""
    return free_ports(1, host)[0]
