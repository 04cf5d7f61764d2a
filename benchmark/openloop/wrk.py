"""The independent cross-check with ``wrk`` (when it is on PATH): its command, its script and its output.

``wrk --latency -t1 -c <users> -d <seconds>s -s wrk.lua <url>``: one thread, ``users`` connections, each
sending its next request when the previous answer is in (a closed loop, like Locust's users). The script
POSTs the scoring request's JSON body. wrk counts non-2xx answers but does not check the score; the queue
(submit, then poll) is beyond a static script, so wrk cross-checks sync and async only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_RPS = re.compile(r"^Requests/sec:\s*([0-9.]+)\s*$", re.MULTILINE)
_P50 = re.compile(r"^\s*50(?:\.0+)?%\s+([0-9.]+)(us|ms|s|m|h)\s*$", re.MULTILINE)
_REQUESTS = re.compile(r"^\s*(\d+) requests in ", re.MULTILINE)
_NON_2XX = re.compile(r"^\s*Non-2xx or 3xx responses:\s*(\d+)\s*$", re.MULTILINE)
_ERRORS = re.compile(
    r"^\s*Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", re.MULTILINE
)


@dataclass(frozen=True)
class WrkResult:
    rps: float
    p50_ms: float | None
    requests: int | None
    errors: int  # non-2xx answers and socket errors


def wrk_script(body: bytes) -> str:
    """A Lua script that makes wrk POST ``body`` as JSON."""
    text = body.decode()
    if "]]" in text:
        raise ValueError("the body cannot go into a Lua long string")
    return f'wrk.method = "POST"\nwrk.body = [[{text}]]\nwrk.headers["Content-Type"] = "application/json"\n'


def wrk_command(executable: str, url: str, users: int, duration_s: float, script: str) -> list[str]:
    """wrk's argv (it takes whole seconds)."""
    seconds = max(1, round(duration_s))
    return [executable, "--latency", "-t1", f"-c{users}", f"-d{seconds}s", "-s", script, url]


def parse_wrk(output: str) -> WrkResult | None:
    """Requests/s, p50 and the error counts from wrk's output, or None without a ``Requests/sec`` line."""
    rps = _RPS.search(output)
    if rps is None:
        return None
    p50 = _P50.search(output)
    requests = _REQUESTS.search(output)
    non_2xx = _NON_2XX.search(output)
    socket_errors = _ERRORS.search(output)
    errors = int(non_2xx.group(1)) if non_2xx else 0
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    return WrkResult(
        rps=float(rps.group(1)),
        p50_ms=float(p50.group(1)) * UNITS_MS[p50.group(2)] if p50 else None,
        requests=int(requests.group(1)) if requests else None,
        errors=errors,
    )
