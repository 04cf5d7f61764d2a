"""Per-request records of Locust workers on other machines, carried to their master (Locust side).

A worker the runner starts itself writes every request to its own file (``--requests-csv``), which the
analysis reads. A worker started by hand on another machine has no such file, and the runner cannot
read that machine's disk; without its records the report would have no per-step statistics. So such
a worker sends its records to its master as Locust custom messages: once a second, and a last batch,
marked final, when its run stops. The master moves them into its own clock (by the difference between
its clock and the batch's send time: the one-way network delay, well under a millisecond on a LAN, is
the error) and keeps them in memory. Its web UI serves them, with the schedule of the stages and
whether every worker's final batch has arrived, to the runner (:mod:`benchmark.locust_remote`).

Imported by the locustfile only (it runs inside Locust, whose gevent patches ``time.sleep``).
"""

from __future__ import annotations

import time
from typing import Any

import psutil
from flask import Response, jsonify
from locust.env import Environment
from locust.runners import STATE_MISSING, MasterRunner, WorkerRunner

from benchmark.locust_remote import (
    HEADER,
    MESSAGE,
    REQUESTS_PATH,
    STATUS_PATH,
    WORKERS_HEADER,
    WORKERS_PATH,
    csv_lines,
)

SEND_EVERY_S = 1.0

Row = tuple[float, str, float, bool]

active = False  # this process is a worker that forwards its records
_pending: list[Row] = []
_process = psutil.Process()


def add(t: float, name: str, latency_ms: float, ok: bool) -> None:
    _pending.append((t, name, latency_ms, ok))


class Collected:
    """The master's side: the forwarded records of the current run (in memory, about 100 bytes a
    request, dropped when the next run starts), each worker's CPU and memory once a second, and the
    workers done sending."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.usage: list[str] = []
        self.finals: set[str] = set()

    def receive(self, environment: Environment, msg: Any, **_: Any) -> None:
        now = time.time()
        self.lines.extend(csv_lines(msg.data["rows"], now - float(msg.data["sent"])))
        cpu, rss = msg.data.get("cpu_percent"), msg.data.get("rss_mb")
        if cpu is not None:
            self.usage.append(f"{now:.3f},{msg.node_id},{float(cpu):.1f},{float(rss or 0.0):.1f}\n")
        if msg.data.get("final"):
            self.finals.add(str(msg.node_id))

    def new_run(self) -> None:
        self.lines, self.usage, self.finals = [], [], set()


def install(environment: Environment, requests_csv: str) -> None:
    """Forward (a worker without a file of its own) or collect (a master); nothing for a standalone run."""
    global active
    runner = environment.runner
    if isinstance(runner, WorkerRunner) and not requests_csv:
        active = True
        _process.cpu_percent()  # the first interval starts now
        runner.greenlet.spawn(_send_loop, runner)
        environment.events.test_stop.add_listener(lambda **_: _send(runner, final=True))
    elif isinstance(runner, MasterRunner):
        collected = Collected()
        runner.register_message(MESSAGE, collected.receive)
        environment.events.test_start.add_listener(lambda **_: collected.new_run())
        environment.events.test_stop.add_listener(lambda **_: _shape_finished(environment))
        if environment.web_ui is not None:
            _routes(environment, runner, collected)


def _send(runner: WorkerRunner, final: bool = False) -> None:
    """The records since the last batch, and this worker's CPU (% of one core since the last batch)
    and memory: what the runner, on another machine, cannot sample."""
    rows = _pending[:]
    del _pending[: len(rows)]
    runner.send_message(
        MESSAGE,
        {
            "sent": time.time(),
            "rows": rows,
            "final": final,
            "cpu_percent": _process.cpu_percent(),
            "rss_mb": _process.memory_info().rss / 1048576,
        },
    )


def _send_loop(runner: WorkerRunner) -> None:
    while True:
        time.sleep(SEND_EVERY_S)  # a greenlet's sleep: Locust has monkey-patched time
        _send(runner)


def _shape_finished(environment: Environment) -> None:
    """A run stopped early (``/stop``) also ends its schedule: the next run starts a new one."""
    if environment.shape_class is not None and hasattr(environment.shape_class, "finished"):
        environment.shape_class.finished = True


def _routes(environment: Environment, runner: MasterRunner, collected: Collected) -> None:
    assert environment.web_ui is not None and environment.web_ui.app is not None
    app = environment.web_ui.app

    @app.route(STATUS_PATH)
    def status() -> Response:
        """What the runner needs besides Locust's own endpoints, in this master's clock (``now``)."""
        shape = environment.shape_class
        options = environment.parsed_options
        return jsonify(
            {
                "now": time.time(),
                "state": runner.state,
                "worker_count": runner.worker_count,
                "workers": sorted(c.id for c in runner.clients.values() if c.state != STATE_MISSING),
                "finals": sorted(collected.finals),
                "records": len(collected.lines),
                "shape": type(shape).__name__ if shape is not None else None,
                "steps": getattr(shape, "steps", None),
                "phase": getattr(options, "phase", None),
                "architecture": getattr(options, "architecture", None),
                "user_classes": sorted(cls.__name__ for cls in environment.user_classes),
            }
        )

    @app.route(REQUESTS_PATH)
    def requests_csv() -> Response:
        return Response(HEADER + "".join(collected.lines), mimetype="text/csv")

    @app.route(WORKERS_PATH)
    def workers_csv() -> Response:
        return Response(WORKERS_HEADER + "".join(collected.usage), mimetype="text/csv")
