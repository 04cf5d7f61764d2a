"""The faults experiment: for each architecture, on a stack of its own, a steady open-loop load with one
fault at a time injected on a timeline — steady load, the fault window, then time to recover.

The load is the open-loop generator (``python -m benchmark.openloop sweep`` with one rate for the whole
run), so a stalled stack does not slow the arrivals down and hide the stall, as a closed loop would. Its
rate is ``BENCH_FAULTS_FRACTION`` of the architecture's capacity (:mod:`benchmark.capacity`), or
``BENCH_FAULTS_RATE``. After each run of the queue, every task it accepted is followed to its end (the
task ledger, :mod:`benchmark.faults.tasks`). Between two faults the stack must be healthy again: a
process that did not come back by itself is restarted, and that is noted as a problem of the fault.

The stack runs with the worker counting each task's runs (``QUEUE_COUNT_RUNS``) and otherwise the
user's settings: the embedded Redis keeps its append-only file as ``REDIS_AOF`` says (the default) or,
with that off, loses its data on a restart and is seeded again.

Raw files (the analysis: :mod:`benchmark.analysis.faults`)::

    faults/index.json                  the plan and what ran: {"steady_s", "window_s", "recover_s",
                                       "fraction", "rate_rps" (set), "redis_aof", "runs": [{"architecture",
                                       "fault", "label", "folder", "skipped"}], "problems": [...]}
    faults/<arch>/<fault>/sweep.json, rate-0.csv, generator.log    the generator's (openloop.records)
    faults/<arch>/<fault>/fault.json   the fault: {"fault", "architecture", "label", "target", "action",
                                       "timeout_s", "timeout_name", "error_limit_ms", "offered_rps",
                                       "capacity_rps", "capacity_source", "events": {"begin", "end",
                                       "ready"} (epoch s), "notes", "problems", "ledger": {"counted_runs",
                                       "waited_s", "wait_limit_s"} (queue)}
    faults/<arch>/<fault>/ledger.csv   queue: every accepted task's final status and counted runs
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmark.capacity import Capacity, capacity
from benchmark.faults.inject import Injection, injection
from benchmark.faults.ledger import accepted_ids
from benchmark.faults.plan import Fault, faults_for, ledger_wait_s, run_seconds
from benchmark.faults.records import FAULT_JSON, FAULTS_DIR, INDEX_JSON, LEDGER_CSV, fault_dir
from benchmark.faults.tasks import counted_runs, final_states, write_ledger
from benchmark.openloop.experiment import (
    OpenLoopOptions,
    generator_command,
    started,
    sweep_options,
    target_url,
)
from benchmark.openloop.generator import QUEUE_SLACK_S
from benchmark.openloop.records import GENERATOR_LOG, SWEEP_JSON, rate_file, record_from_row
from benchmark.processes import wait
from benchmark.settings import BenchSettings
from scoring_bench.core.settings import Settings
from scoring_bench.stack.servers import service
from scoring_bench.stack.supervisor import StackError, Supervisor, running_stack

START_WAIT_S = 30.0  # for the generator process to start writing
START_MARGIN_S = 1.0  # the generator's warm-up requests, before its rate begins
GRACE_S = 60.0
SETTLE_S = 1.0  # between two faults, once the stack is healthy
MAX_RESTARTS = 3

Say = Callable[[str], None]


@dataclass
class Events:
    """When the fault began, when its end began (restart, SIGCONT), and when that was done (epoch s)."""

    begin: float | None = None
    end: float | None = None
    ready: float | None = None


@dataclass
class FaultRecord:
    """``fault.json``."""

    fault: str
    architecture: str
    label: str
    target: str
    action: str
    timeout_s: float
    timeout_name: str
    error_limit_ms: float
    offered_rps: float
    capacity_rps: float
    capacity_source: str
    events: Events = field(default_factory=Events)
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    ledger: dict[str, Any] | None = None

    def save(self, folder: Path) -> None:
        _write_json(folder / FAULT_JSON, asdict(self))


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(path)


class FaultsIndex:
    """``faults/index.json``, rewritten after each fault so an interrupted run keeps what it measured."""

    def __init__(self, folder: Path, bench: BenchSettings) -> None:
        self.path = folder / INDEX_JSON
        folder.mkdir(parents=True, exist_ok=True)
        self.data: dict[str, Any] = {
            "steady_s": bench.bench_faults_steady_s,
            "window_s": bench.bench_faults_window_s,
            "recover_s": bench.bench_faults_recover_s,
            "fraction": bench.bench_faults_fraction,
            "rate_rps": bench.bench_faults_rate,
            "redis_aof": bench.redis_aof if bench.redis_url is None else None,
            "runs": [],
            "problems": [],
        }
        self.save()

    def add(self, fault: Fault, folder: str | None) -> None:
        entry = {"architecture": fault.architecture, "fault": fault.name, "label": fault.label}
        self.data["runs"].append({**entry, "folder": folder, "skipped": fault.skipped})
        self.save()

    def problem(self, text: str) -> None:
        self.data["problems"].append(text)
        self.save()

    def save(self) -> None:
        _write_json(self.path, self.data)


def stack_settings(bench: BenchSettings) -> Settings:
    """The faults' stack: the user's, with the worker counting each task's runs."""
    return bench.stack_settings().model_copy(update={"queue_count_runs": True})


def planned_faults(bench: BenchSettings) -> int:
    """How many faults the run lists (skipped ones included)."""
    return sum(len(faults_for(bench, arch)) for arch in bench.architectures)


def run_faults(
    bench: BenchSettings, run_dir: Path, tick: Callable[[], None] = lambda: None, say: Say = lambda _: None
) -> Path:
    """Every fault on every architecture; returns ``faults/``. A fault that fails is noted in its
    ``fault.json``; an architecture whose stack cannot be started or brought back to health stops there (its
    problem recorded in the index), and the next one gets a stack of its own."""
    folder = Path(run_dir) / FAULTS_DIR
    index = FaultsIndex(folder, bench)
    for arch in bench.architectures:
        faults = faults_for(bench, arch)
        for skipped in (f for f in faults if f.skipped):
            index.add(skipped, None)
            tick()
        todo = [f for f in faults if not f.skipped]
        if todo:
            try:
                _architecture(bench, run_dir, arch, todo, index, tick, say)
            except Exception as exc:  # its stack, its capacity, or a stack that did not come back
                index.problem(f"{arch}: stopped: {type(exc).__name__}: {exc}")
                say(f"faults {arch}: stopped: {exc}")
    return folder


def _architecture(
    bench: BenchSettings,
    run_dir: Path,
    arch: str,
    faults: list[Fault],
    index: FaultsIndex,
    tick: Callable[[], None],
    say: Say,
) -> None:
    stack = stack_settings(bench)
    with running_stack(stack, say) as state:
        supervisor = Supervisor(stack, say)
        found = capacity(bench, state, arch, run_dir, bench.bench_faults_rate, bench.bench_faults_probe_s)
        rate = found.rate(bench.bench_faults_fraction)
        fraction = bench.bench_faults_fraction
        say(f"faults {arch}: steady load {rate:.0f} req/s, {fraction:g} × {found.describe()}")
        for position, fault in enumerate(faults):
            if position:
                settle(supervisor, index, fault, say)
            folder = fault_dir(run_dir, arch, fault.name)
            try:
                run_fault(bench, stack, supervisor, fault, rate, found, folder, say)
            except Exception as exc:  # noted in its fault.json; the next fault gets a healthy stack first
                say(f"faults {arch}: {fault.name} failed: {exc}")
            index.add(fault, f"{arch}/{fault.name}")
            tick()


def settle(supervisor: Supervisor, index: FaultsIndex, before: Fault, say: Say) -> None:
    """Wait until every process of the stack is healthy; restart those that do not get there by
    themselves (a problem, noted in the index), and raise if even that fails."""
    deadline = time.monotonic() + supervisor.settings.health_timeout_s
    while (unhealthy := _unhealthy(supervisor)) and time.monotonic() < deadline:
        time.sleep(0.5)
    restarted = 0
    while unhealthy and restarted < MAX_RESTARTS:  # in start order: a dependency before what needs it
        name = unhealthy[0]
        index.problem(f"{before.architecture}: {name} was not healthy before {before.name}: restarted")
        say(f"faults {before.architecture}: {name} unhealthy, restarting it")
        supervisor.restart(name)
        restarted += 1
        unhealthy = _unhealthy(supervisor)
    if unhealthy:
        raise StackError(f"{', '.join(unhealthy)} still unhealthy after {restarted} restarts")
    time.sleep(SETTLE_S)


def _unhealthy(supervisor: Supervisor) -> list[str]:
    return [row["service"] for row in supervisor.status() if row["health"] != "OK"]


def run_fault(
    bench: BenchSettings,
    stack: Settings,
    supervisor: Supervisor,
    fault: Fault,
    rate: float,
    found: Capacity,
    folder: Path,
    say: Say,
) -> FaultRecord:
    """One fault under the steady load: the generator in the background, the fault on the timeline, then
    (the queue) the task ledger. Writes ``folder``'s files; the generator is stopped whatever happens."""
    folder.mkdir(parents=True, exist_ok=True)
    arch = fault.architecture
    record = FaultRecord(
        fault.name,
        arch,
        fault.label,
        fault.target,
        fault.action,
        fault.timeout_s,
        fault.timeout_name,
        fault.error_limit_ms,
        rate,
        found.rps,
        found.source,
    )
    record.save(folder)
    options = OpenLoopOptions(
        step_s=run_seconds(bench),
        arrivals=bench.bench_open_arrivals,
        seed=bench.bench_open_seed,
        connections=bench.bench_open_connections,
        queue_poll_wait_ms=bench.bench_queue_poll_wait_ms,
        queue_timeout_s=bench.bench_queue_timeout_s,
        pause_s=0.0,
    )
    url = target_url(stack, arch)
    argv = generator_command(
        "sweep", arch, url, folder, stack.num_entities, *sweep_options([rate], 1, options, arch)
    )
    limit = options.step_s + options.timeout_s(arch) + QUEUE_SLACK_S + START_WAIT_S + GRACE_S
    say(f"faults {arch}: {fault.label} at {rate:.0f} req/s")
    inject = injection(fault, supervisor, bench.bench_faults_rabbitmq_node, say)
    try:
        with open(folder / GENERATOR_LOG, "wb") as log, started(argv, stack, log) as proc:
            _wait_for_start(folder / SWEEP_JSON, proc.poll)
            _timeline(bench, inject, record, time.time() + START_MARGIN_S)
            wait(proc, limit, lambda _: None)
        if proc.returncode != 0:
            record.problems.append(f"the generator exited with {proc.returncode}: see {GENERATOR_LOG}")
        if arch == "queue":
            record.ledger = _ledger(stack, folder, record)
    except Exception as exc:
        record.problems.append(f"{type(exc).__name__}: {exc}")
        raise
    finally:
        record.save(folder)
    return record


def _wait_for_start(path: Path, poll: Callable[[], int | None]) -> None:
    deadline = time.monotonic() + START_WAIT_S
    while not path.is_file():
        if poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the load generator did not start (no {path.name})")
        time.sleep(0.05)


def _sleep_until(t: float) -> None:
    while (left := t - time.time()) > 0:
        time.sleep(min(left, 0.05))


def _timeline(bench: BenchSettings, inject: Injection, record: FaultRecord, rate_start: float) -> None:
    """Steady load, the fault for its window, its end. The end always runs once the fault began (a
    frozen process is continued, a killed one restarted, whatever happened meanwhile)."""
    _sleep_until(rate_start + bench.bench_faults_steady_s)
    record.events.begin = time.time()
    record.notes.append(inject.begin())
    try:
        _sleep_until(record.events.begin + bench.bench_faults_window_s)
    finally:
        record.events.end = time.time()
        record.notes.append(inject.end())
        record.events.ready = time.time()


def _ledger(stack: Settings, folder: Path, record: FaultRecord) -> dict[str, Any]:
    """Every task the run's submits were answered with, followed to its end; ``ledger.csv``."""
    ids = accepted_ids(_task_ids(folder / rate_file(0)))
    end = record.events.end or time.time()
    limit = ledger_wait_s(stack)
    began = time.monotonic()
    final = final_states(service("scoring-queue").url(stack), ids, max(end + limit - time.time(), 1.0))
    waited = time.monotonic() - began
    runs = counted_runs(stack, ids) if stack.queue_count_runs else None
    write_ledger(folder / LEDGER_CSV, ids, final, runs)
    return {"counted_runs": runs is not None, "waited_s": waited, "wait_limit_s": limit}


def _task_ids(path: Path) -> list[str]:
    if not path.is_file():
        return []
    with open(path, newline="") as handle:
        return [r.task_id for row in csv.DictReader(handle) if (r := record_from_row(row)) is not None]
