"""The async handler against the minimal control (issue 13 §5, doc/methodology.md).

On the main stack, started with the control beside the product (``MINIMAL_CONTROL``, set when the run asks
for it: ``BENCH_CONTROL``), each repetition measures both handlers interleaved — the product, then the
control, the order swapped every repetition — so both see the same machine state: ``BENCH_CONTROL_USERS``
connections in a closed loop for ``BENCH_CONTROL_S`` (wrk when it is on PATH, else the open-loop generator's
closed loop); then ``BENCH_CONTROL_REQUESTS`` sequential requests of one user to each (timeit-style) for the
p50, alternating between the two request by request.
Raw files under ``control/``: ``control.json`` (what ran), ``<handler>/rep-<n>/`` with ``wrk.txt`` (or
``closed.json`` and ``closed.csv``), ``cpu.json`` (the handler's CPU seconds over the closed loop) and
``sequential.csv``.
"""

from __future__ import annotations

import csv
import json
import shutil
import timeit
from collections.abc import Callable
from pathlib import Path

import psutil
import requests

from benchmark.openloop.experiment import GRACE_S, Sampled, closed_loop, run_process
from benchmark.openloop.generator import bodies
from benchmark.openloop.records import WRK, WRK_TXT
from benchmark.openloop.wrk import wrk_command, wrk_script
from benchmark.settings import BenchSettings
from scoring_bench.core.settings import Settings
from scoring_bench.stack.servers import CONTROL, service
from scoring_bench.stack.supervisor import StackState

CONTROL_DIR = "control"
CONTROL_JSON = "control.json"
SEQUENTIAL_CSV = "sequential.csv"
CPU_JSON = "cpu.json"  # the handler's processes' CPU seconds over the closed loop
# The two handlers compared: the product's async handler and the minimal control, by their report names.
HANDLERS = {"product": "scoring-async", "control": CONTROL.name}
WARMUP_REQUESTS = 20  # per handler before the first repetition: connections, pools, caches
WARMUP_S = 1.0  # a short closed loop per handler before the first repetition (not analysed)
REQUEST_TIMEOUT_S = 30.0
REQUEST_S = 0.06  # one sequential request to the async handler (two concurrent 40-50 ms model calls)
TOOL_S = 1.5  # starting and stopping wrk or the generator


def with_control(stack: Settings, settings: BenchSettings) -> Settings:
    """The main stack's settings, with the control started beside it when the run measures it."""
    return stack.model_copy(update={"minimal_control": True}) if settings.runs_control() else stack


def planned_control_s(settings: BenchSettings) -> float:
    """How long the control comparison takes: the warm-up, then per repetition both handlers' measurements."""
    one = settings.bench_control_s + TOOL_S + settings.bench_control_requests * REQUEST_S
    warmup = WARMUP_S + TOOL_S + WARMUP_REQUESTS * REQUEST_S
    return len(HANDLERS) * (warmup + settings.bench_repeats * one)


def rep_dir(run_dir: Path, handler: str, rep: int) -> Path:
    return Path(run_dir) / CONTROL_DIR / handler / f"rep-{rep}"


def order(rep: int) -> list[str]:
    """The handlers in the order repetition ``rep`` measures them: swapped every repetition."""
    names = list(HANDLERS)
    return names if rep % 2 else names[::-1]


def run_control(
    settings: BenchSettings, state: StackState, run_dir: Path, tick: Callable[[float], None] = lambda _: None
) -> Path:
    """Every repetition of the comparison on the running stack (started :func:`with_control`)."""
    folder = Path(run_dir) / CONTROL_DIR
    folder.mkdir(parents=True, exist_ok=True)
    stack = with_control(settings.stack_settings(), settings)
    urls = {name: service(svc).predict_url(stack) for name, svc in HANDLERS.items()}
    body = bodies(stack.num_entities, 2)[1]  # entity "1", as timeit
    wrk = shutil.which(WRK)
    script = folder / "wrk.lua"
    script.write_text(wrk_script(body))
    meta = {
        "users": settings.bench_control_users,
        "duration_s": settings.bench_control_s,
        "requests": settings.bench_control_requests,
        "repeats": settings.bench_repeats,
        "tool": "wrk" if wrk else "generator",
        "handlers": HANDLERS,
        "urls": urls,
        "order": {rep: order(rep) for rep in range(1, settings.bench_repeats + 1)},
    }
    (folder / CONTROL_JSON).write_text(json.dumps(meta, indent=2))
    targets = Sampled(state)
    pids = {name: [p.pid for p in state.processes if p.name == svc] for name, svc in HANDLERS.items()}
    sequential(urls, body, WARMUP_REQUESTS, {})  # warm-up, not analysed
    for name in HANDLERS:
        closed(settings, stack, wrk, script, urls[name], folder / "warmup" / name, WARMUP_S, targets)
    for rep in range(1, settings.bench_repeats + 1):
        for name in order(rep):
            out = rep_dir(run_dir, name, rep)
            before = cpu_seconds(pids[name])
            closed(settings, stack, wrk, script, urls[name], out, settings.bench_control_s, targets)
            if pids[name]:  # an external target's processes are not here: no CPU, rather than zero
                (out / CPU_JSON).write_text(json.dumps({"cpu_s": cpu_seconds(pids[name]) - before}))
        paths = {name: rep_dir(run_dir, name, rep) / SEQUENTIAL_CSV for name in order(rep)}
        sequential({name: urls[name] for name in order(rep)}, body, settings.bench_control_requests, paths)
        tick(rep)
    return folder


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of these processes and their children (uvicorn's workers) so far."""
    total = 0.0
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            for each in (proc, *proc.children(recursive=True)):
                times = each.cpu_times()
                total += times.user + times.system
        except psutil.Error:
            pass
    return total


def closed(
    settings: BenchSettings,
    stack: Settings,
    wrk: str | None,
    script: Path,
    url: str,
    out: Path,
    duration_s: float,
    targets: Sampled,
) -> None:
    """``BENCH_CONTROL_USERS`` closed loops against ``url`` for ``duration_s``: wrk, else the generator."""
    out.mkdir(parents=True, exist_ok=True)
    users = settings.bench_control_users
    if wrk is None:
        closed_loop(settings, "async", out, users, duration_s, 0.0, lambda _: None, targets, url)
        return
    argv = wrk_command(wrk, url, users, duration_s, str(script))
    run_process(argv, stack, out / WRK_TXT, duration_s + GRACE_S, lambda _: None, targets, WRK)


def sequential(urls: dict[str, str], body: bytes, n: int, paths: dict[str, Path]) -> None:
    """``n`` requests to each handler one after another, alternating between the handlers request by request
    (each over its own keep-alive connection), so that both see the same moments of the machine: measured in
    blocks, the handler measured second had read ~0.4 ms slower (doc/methodology.md, the control). Each
    handler's times to its ``paths`` entry (i, latency_ms, status), or nowhere (a warm-up)."""
    sessions = {name: requests.Session() for name in urls}
    headers = {"Content-Type": "application/json"}
    rows: dict[str, list[tuple[int, str, int]]] = {name: [] for name in urls}
    try:
        for session in sessions.values():
            session.trust_env = False
        for i in range(n):
            for name, url in urls.items():
                started = timeit.default_timer()
                status = (
                    sessions[name]
                    .post(url, data=body, headers=headers, timeout=REQUEST_TIMEOUT_S)
                    .status_code
                )
                rows[name].append((i, f"{(timeit.default_timer() - started) * 1000.0:.3f}", status))
    finally:
        for session in sessions.values():
            session.close()
    for name, path in paths.items():
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["i", "latency_ms", "status"])
            writer.writerows(rows[name])
