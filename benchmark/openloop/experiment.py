"""Run the open-loop generator against a running stack, as its own process, its CPU sampled meanwhile.

:func:`run_openloop`: one sweep (every offered rate of one architecture, in order) by one generator
process (``python -m benchmark.openloop sweep``). :func:`run_crosscheck`: the same generator as a closed
loop of ``users``, then ``wrk`` at the same concurrency when it is on PATH (sync and async only). The files
each writes are described in :mod:`benchmark.openloop.records`. Whatever happens — an error, a timeout,
Ctrl-C — every process started here is stopped before these functions return.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from benchmark.openloop.generator import QUEUE_SLACK_S, bodies
from benchmark.openloop.records import (
    GENERATOR,
    GENERATOR_LOG,
    WRK,
    WRK_LUA,
    WRK_TXT,
    crosscheck_dir,
    crosscheck_resources,
    sweep_dir,
    sweep_resources,
)
from benchmark.openloop.schedule import Arrivals
from benchmark.openloop.wrk import wrk_command, wrk_script
from benchmark.processes import stop, wait
from benchmark.sampler import phase_sampler
from benchmark.settings import BenchSettings
from scoring_bench.core.settings import Settings
from scoring_bench.stack.process_env import PROJECT_ROOT, process_env
from scoring_bench.stack.servers import service
from scoring_bench.stack.supervisor import StackState

GRACE_S = 60.0  # beyond the planned time (and the last requests' timeout) before a run counts as hung
REQUEST_TIMEOUT_S = 30.0  # a sync or async request not answered by then gets no answer

Tick = Callable[[float], None]


@dataclass(frozen=True)
class OpenLoopOptions:
    """The sweep's knobs: seconds per rate, the arrivals and their seed, the generator's connection limit,
    the queue client's long poll and timeout; the pause between two rates and the timeout of a sync or
    async request."""

    step_s: float
    arrivals: Arrivals
    seed: int
    connections: int
    queue_poll_wait_ms: int
    queue_timeout_s: float
    queue_submit_wait_ms: int = 0
    pause_s: float = 1.0
    request_timeout_s: float = REQUEST_TIMEOUT_S

    def timeout_s(self, arch: str) -> float:
        return self.queue_timeout_s if arch == "queue" else self.request_timeout_s


def target_url(stack: Settings, arch: str) -> str:
    """What the generator drives: the scoring handler's predict URL, or the queue API's base URL."""
    if arch == "queue":
        return service("scoring-queue").url(stack)
    return service(f"scoring-{arch}").predict_url(stack)


def generator_command(kind: str, arch: str, url: str, out: Path, entities: int, *options: str) -> list[str]:
    """argv of ``python -m benchmark.openloop <kind>`` (``sweep`` or ``closed``)."""
    common = ["--arch", arch, "--url", url, "--out", str(out), "--entities", str(entities)]
    return [sys.executable, "-m", "benchmark.openloop", kind, *common, *options]


def sweep_options(rates_rps: list[float], rep: int, options: OpenLoopOptions, arch: str) -> list[str]:
    return [
        "--rates",
        ",".join(f"{rate:g}" for rate in rates_rps),
        "--step-s",
        f"{options.step_s:g}",
        "--arrivals",
        options.arrivals,
        "--seed",
        str(options.seed),
        "--connections",
        str(options.connections),
        "--rep",
        str(rep),
        "--pause-s",
        f"{options.pause_s:g}",
        "--timeout-s",
        f"{options.timeout_s(arch):g}",
        "--poll-wait-ms",
        str(options.queue_poll_wait_ms),
        "--submit-wait-ms",
        str(options.queue_submit_wait_ms),
    ]


def planned_seconds(rates: int, options: OpenLoopOptions) -> float:
    """How long a sweep of ``rates`` rates should take."""
    return rates * options.step_s + max(rates - 1, 0) * options.pause_s


def run_openloop(
    settings: BenchSettings,
    state: StackState,
    arch: str,
    run_dir: Path,
    rates_rps: list[float],
    rep: int,
    options: OpenLoopOptions,
    tick: Tick = lambda _: None,
) -> Path:
    """One sweep of ``rates_rps`` against ``arch``; returns its folder (``openloop/<arch>/rep-<rep>``)."""
    folder = sweep_dir(run_dir, arch, rep)
    folder.mkdir(parents=True, exist_ok=True)
    stack = settings.stack_settings()
    argv = generator_command(
        "sweep",
        arch,
        target_url(stack, arch),
        folder,
        stack.num_entities,
        *sweep_options(rates_rps, rep, options, arch),
    )
    limit = planned_seconds(len(rates_rps), options) + options.timeout_s(arch) + QUEUE_SLACK_S + GRACE_S
    targets = Sampled(state)
    with phase_sampler(settings, sweep_resources(run_dir, arch, rep), targets):
        run_process(argv, stack, folder / GENERATOR_LOG, limit, tick, targets, GENERATOR)
    return folder


def run_crosscheck(
    settings: BenchSettings,
    state: StackState,
    arch: str,
    run_dir: Path,
    users: int,
    duration_s: float,
    warmup_s: float = 1.0,
    tick: Tick = lambda _: None,
) -> Path:
    """``users`` closed loops of the generator for ``warmup_s + duration_s``, then (sync and async, when
    wrk is on PATH) wrk with ``users`` connections for ``duration_s``; returns ``crosscheck/<arch>``."""
    folder = crosscheck_dir(run_dir, arch)
    stack = settings.stack_settings()
    url = target_url(stack, arch)
    wrk = shutil.which(WRK) if arch != "queue" else None
    targets = Sampled(state)
    with phase_sampler(settings, crosscheck_resources(run_dir, arch), targets):
        closed_loop(settings, arch, folder, users, duration_s, warmup_s, tick, targets)
        if wrk is not None:
            script = folder / WRK_LUA
            script.write_text(wrk_script(bodies(stack.num_entities, 1)[0]))
            argv = wrk_command(wrk, url, users, duration_s, str(script))
            run_process(argv, stack, folder / WRK_TXT, duration_s + GRACE_S, tick, targets, WRK)
    return folder


def closed_loop(
    settings: BenchSettings,
    arch: str,
    folder: Path,
    users: int,
    duration_s: float,
    warmup_s: float,
    tick: Tick,
    targets: Sampled,
    url: str | None = None,
) -> None:
    """``users`` closed loops of the generator process for ``warmup_s + duration_s``, its files in
    ``folder`` (``closed.json``, ``closed.csv``; :mod:`benchmark.openloop.records`); ``url``: another
    handler of ``arch``'s API than the architecture's own (the minimal control)."""
    folder.mkdir(parents=True, exist_ok=True)
    stack = settings.stack_settings()
    timeout = settings.bench_queue_timeout_s if arch == "queue" else REQUEST_TIMEOUT_S
    argv = generator_command(
        "closed",
        arch,
        url or target_url(stack, arch),
        folder,
        stack.num_entities,
        *("--users", str(users), "--duration-s", f"{duration_s:g}", "--warmup-s", f"{warmup_s:g}"),
        *("--timeout-s", f"{timeout:g}", "--poll-wait-ms", str(settings.bench_queue_poll_wait_ms)),
        *("--submit-wait-ms", str(settings.bench_queue_wait_ms)),
    )
    limit = warmup_s + duration_s + timeout + QUEUE_SLACK_S + GRACE_S
    run_process(argv, stack, folder / GENERATOR_LOG, limit, tick, targets, GENERATOR)


class Sampled:
    """The processes the resource sampler reads (its ``targets``): the stack's, plus the one running now.
    The mapping is replaced, never changed in place: the sampler's thread always reads a whole one."""

    def __init__(self, state: StackState) -> None:
        self.stack = {p.name: [p.pid] for p in state.processes}
        self.current = dict(self.stack)

    def __call__(self) -> dict[str, list[int]]:
        return self.current

    def running(self, name: str, pid: int | None) -> None:
        """``name`` is process ``pid`` from now on (None: nothing besides the stack)."""
        self.current = {**self.stack, name: [pid]} if pid is not None else dict(self.stack)


def run_process(
    argv: list[str],
    stack: Settings,
    output: Path,
    timeout_s: float,
    tick: Tick,
    targets: Sampled,
    name: str,
) -> None:
    """Run ``argv`` (its output to ``output``) until it exits, sampled as ``name`` meanwhile; raise
    when it fails or outlives ``timeout_s``. It is stopped whatever happens."""
    with open(output, "wb") as log, started(argv, stack, log) as proc:
        targets.running(name, proc.pid)
        try:
            wait(proc, timeout_s, tick)
        finally:
            targets.running(name, None)
    if proc.returncode != 0:
        raise RuntimeError(f"{Path(argv[0]).name} {argv[1:4]} exited with {proc.returncode}; see {output}")


@contextmanager
def started(argv: list[str], stack: Settings, log: IO[bytes]) -> Iterator[subprocess.Popen[bytes]]:
    """A process with the project on PYTHONPATH and the stack's settings, stopped when the block ends."""
    proc = subprocess.Popen(
        argv,
        env=process_env(stack),
        cwd=PROJECT_ROOT,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield proc
    finally:
        stop([proc])
