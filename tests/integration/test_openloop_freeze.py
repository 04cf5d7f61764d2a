"""Coordinated omission, shown: a server that freezes for 500 ms in the middle of an open-loop run.

The real generator (its own process, ``python -m benchmark.openloop``) sends 200 req/s at constant spacing
for 4 s over 4 connections to a small aiohttp server (in a thread, on a free loopback port) that answers at
once, except that every request arriving in a 500 ms window 1.5 s in waits until the window ends. The
requests scheduled during the freeze wait for a connection: the corrected latency (from the schedule)
shows the freeze at p99, the uncorrected one (from the send, what a closed loop sees: only the 4 requests
on the wire were slow) does not.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from benchmark.analysis.openloop import openloop_section
from benchmark.openloop.records import sweep_dir
from scoring_bench.stack.process_env import PROJECT_ROOT, with_project_path
from tests.integration.conftest import free_port

pytestmark = pytest.mark.integration

RATE, DURATION_S, CONNECTIONS = 200.0, 4.0, 4
FREEZE_AT_S, FREEZE_S = 1.5, 0.5


class FreezingServer:
    """An aiohttp app in its own thread and loop that answers ``{"detail": 0.5}`` at once, except during
    ``[first request + FREEZE_AT_S, + FREEZE_S)``: a request arriving then waits until the window ends."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.loop = asyncio.new_event_loop()
        self.first: float | None = None
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.runner: web.AppRunner | None = None

    async def predict(self, request: web.Request) -> web.Response:
        await request.read()
        now = self.loop.time()
        self.first = now if self.first is None else self.first
        freeze_end = self.first + FREEZE_AT_S + FREEZE_S
        if self.first + FREEZE_AT_S <= now < freeze_end:
            await asyncio.sleep(freeze_end - now)
        return web.json_response({"detail": 0.5})

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        app = web.Application()
        app.router.add_post("/predict", self.predict)
        self.runner = web.AppRunner(app, access_log=None)
        self.loop.run_until_complete(self.runner.setup())
        self.loop.run_until_complete(web.TCPSite(self.runner, "127.0.0.1", self.port).start())
        self.ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(self.runner.cleanup())
        self.loop.close()

    def __enter__(self) -> FreezingServer:
        self.thread.start()
        if not self.ready.wait(10):
            raise RuntimeError("the test server did not start")
        return self

    def __exit__(self, *_: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


@pytest.fixture
def server() -> Iterator[FreezingServer]:
    with FreezingServer(free_port()) as running:
        yield running


def run_generator(url: str, run_dir: Path) -> None:
    argv = [sys.executable, "-m", "benchmark.openloop", "sweep", "--arch", "sync", "--url", url]
    argv += [
        "--out",
        str(sweep_dir(run_dir, "sync", 0)),
        "--rates",
        f"{RATE:g}",
        "--step-s",
        f"{DURATION_S:g}",
    ]
    argv += ["--arrivals", "constant", "--connections", str(CONNECTIONS), "--timeout-s", "10"]
    proc = subprocess.Popen(argv, cwd=PROJECT_ROOT, env=with_project_path(os.environ))
    try:
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_the_corrected_p99_shows_a_freeze_the_uncorrected_hides(
    server: FreezingServer, tmp_path: Path
) -> None:
    run_generator(f"http://127.0.0.1:{server.port}/predict", tmp_path)
    section = openloop_section(tmp_path, "sync", p99_limit_ms=100.0)
    assert section is not None and len(section.rates) == 1
    rate = section.rates[0]
    assert rate.requests == RATE * DURATION_S and rate.errors == 0 and rate.completed == rate.requests
    assert rate.p99_ms is not None and rate.p99_ms > 300  # ~100 requests scheduled in the freeze wait
    assert rate.max_ms is not None and rate.max_ms > 400
    assert rate.uncorrected_p99_ms is not None and rate.uncorrected_p99_ms < 100  # 4 slow of 800
    assert rate.uncorrected_max_ms is not None and rate.uncorrected_max_ms > 400  # those 4
    assert section.max_rate_under_limit_rps is None  # the freeze puts the p99 over 100 ms
