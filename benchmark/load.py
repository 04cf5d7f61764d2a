"""Run one Locust phase (headless, as a subprocess) against one architecture.

Locust writes its own CSV and HTML files; the locustfile adds the raw per-request records and
the schedule of the stages; a :class:`ResourceSampler` records CPU and memory meanwhile, and for the
queue a :class:`QueueDepthSampler` the broker's queue depth.

``LOCUST_WORKERS=auto`` (see :func:`auto_workers`): the 1-user phase runs one Locust process; each
later phase a master and as many workers as the previous phase needed: one, plus one whenever the
previous phase's load generator peaked above ``HOT_GENERATOR_PERCENT`` of a core.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmark.processes import stop, wait
from benchmark.queue_depth import QueueDepthSampler
from benchmark.sampler import ResourceSampler
from benchmark.settings import AUTO, BenchSettings
from scoring_bench.stack.process_env import PROJECT_ROOT, process_env
from scoring_bench.stack.supervisor import StackState

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
USER_CLASSES = {"sync": "SyncScoringUser", "async": "AsyncScoringUser", "queue": "QueueScoringUser"}
GRACE_S = 60.0  # beyond the planned duration before a Locust run counts as hung
HOT_GENERATOR_PERCENT = 80.0  # auto workers: a Locust process above this (% of one core) gets help
QUEUE_DEPTH_INTERVAL_S = 0.25


@dataclass(frozen=True)
class Stage:
    users: int
    duration_s: float
    warmup_s: float = 0.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def auto_workers(previous_workers: int | None, previous_peak_percent: float | None, cores: int) -> int:
    """Locust workers for a phase under ``LOCUST_WORKERS=auto`` (0: one standalone process).

    ``previous_workers`` is None for the first phase (1 user: one process is plenty). Otherwise a
    master and at least one worker, as many as the previous phase had, plus one when its busiest
    Locust process peaked above ``HOT_GENERATOR_PERCENT`` of one core — never more than ``cores``.
    """
    if previous_workers is None:
        return 0
    workers = max(previous_workers, 1)
    if previous_peak_percent is not None and previous_peak_percent > HOT_GENERATOR_PERCENT:
        workers += 1
    return max(1, min(workers, cores))


def locust_options(
    settings: BenchSettings, arch: str, phase: str, stages: list[Stage], out: Path
) -> list[str]:
    """The locustfile's own options (``benchmark/locustfile.py``): the load shape, where its
    schedule and every request are recorded, and the queue user's knobs."""
    return [
        "--stages",
        json.dumps([asdict(s) for s in stages]),
        "--schedule-json",
        str(out / f"{arch}_schedule.json"),
        "--requests-csv",
        str(out / f"{arch}_requests.{{pid}}.csv"),
        "--phase",
        phase,
        "--architecture",
        arch,
        "--queue-wait-ms",
        str(settings.bench_queue_wait_ms),
        "--queue-poll-wait-ms",
        str(settings.bench_queue_poll_wait_ms),
        "--queue-timeout-s",
        str(settings.bench_queue_timeout_s),
    ]


def locust_commands(
    settings: BenchSettings,
    arch: str,
    out: Path,
    workers: int | None = None,
    options: list[str] | None = None,
) -> list[list[str]]:
    """argv of the Locust process(es): one standalone, or a master and ``workers`` workers
    (default: ``LOCUST_WORKERS``, where ``auto`` means one process), each with ``options``
    (:func:`locust_options`)."""
    if workers is None:
        workers = 0 if settings.locust_workers == AUTO else int(settings.locust_workers)
    base = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--loglevel", "WARNING", *(options or [])]
    main = base + [
        "--headless",
        "--only-summary",
        "--exit-code-on-error",
        "0",
        "--csv",
        str(out / arch),
        "--csv-full-history",
        "--html",
        str(out / f"{arch}.html"),
    ]
    if workers == 0:
        return [main + [USER_CLASSES[arch]]]
    port = _free_port()
    master = main + [
        "--master",
        "--master-bind-host",
        "127.0.0.1",
        "--master-bind-port",
        str(port),
        "--expect-workers",
        str(workers),
        USER_CLASSES[arch],
    ]
    worker = base + ["--worker", "--master-host", "127.0.0.1", "--master-port", str(port), USER_CLASSES[arch]]
    return [master] + [worker] * workers


def run_phase(
    settings: BenchSettings,
    state: StackState,
    arch: str,
    phase: str,
    stages: list[Stage],
    run_dir: Path,
    tick: Callable[[float], None] = lambda _: None,
    workers: int | None = None,
) -> Path:
    """Drive ``stages`` against ``arch`` with ``workers`` Locust workers (None: ``LOCUST_WORKERS``,
    ``auto`` meaning one process); return the phase folder."""
    out = run_dir / "locust" / phase
    out.mkdir(parents=True, exist_ok=True)
    env = process_env(settings.stack_settings())
    options = locust_options(settings, arch, phase, stages, out)
    planned = sum(s.duration_s for s in stages)
    procs: list[subprocess.Popen[bytes]] = []
    with open(out / f"{arch}.log", "ab") as log:
        try:
            for argv in locust_commands(settings, arch, out, workers, options):
                procs.append(
                    subprocess.Popen(
                        argv,
                        env=env,
                        cwd=PROJECT_ROOT,
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
            targets = _targets(state, procs)
            resources = ResourceSampler(
                run_dir / "resources" / f"{phase}_{arch}.csv", targets, settings.bench_sample_interval_s
            )
            with resources, _depth_sampler(settings, arch, phase, run_dir):
                wait(procs[0], planned + GRACE_S, tick)
        finally:
            stop(procs)
    if procs[0].returncode not in (0, None):
        raise RuntimeError(f"locust exited with {procs[0].returncode}; see {out / f'{arch}.log'}")
    return out


def _depth_sampler(
    settings: BenchSettings, arch: str, phase: str, run_dir: Path
) -> AbstractContextManager[Any]:
    """The queue's depth during the phase (``resources/<phase>_queue_depth.csv``); nothing for the others."""
    if arch != "queue":
        return nullcontext()
    return QueueDepthSampler(
        run_dir / "resources" / f"{phase}_queue_depth.csv", settings.stack_settings(), QUEUE_DEPTH_INTERVAL_S
    )


def _targets(state: StackState, procs: list[subprocess.Popen[bytes]]) -> Callable[[], dict[str, list[int]]]:
    fixed = {p.name: [p.pid] for p in state.processes}
    fixed["locust"] = [procs[0].pid]  # standalone, or the master
    fixed.update({f"locust-worker-{i}": [p.pid] for i, p in enumerate(procs[1:], start=1)})
    return lambda: fixed
