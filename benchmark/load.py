"""Run one Locust phase (headless, as a subprocess) against one architecture.

Locust writes its own CSV and HTML files; the locustfile adds the raw per-request records and
the schedule of the stages; a :class:`ResourceSampler` records CPU and memory meanwhile, and for the
queue a :class:`QueueDepthSampler` the broker's queue depth.

``LOCUST_WORKERS=auto`` (see :func:`auto_workers`): the 1-user phase runs one Locust process; each
later phase a master and as many workers as the previous phase needed: one, plus one whenever the
previous phase's load generator peaked above ``HOT_GENERATOR_PERCENT`` of a core.

The load from other machines (:mod:`benchmark.locust_remote`): with ``LOCUST_MASTER_URL`` every phase
runs on that master, through its web API; with ``LOCUST_EXPECT_WORKERS=N`` the runner starts one master
for the whole run (:func:`local_master`), waits for N workers started elsewhere, and drives it the same
way. Either way ``LOCUST_WORKERS`` is ignored and no worker runs here.
"""

from __future__ import annotations

import atexit
import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmark.locust_remote import MasterClient, RemoteLocustError, drive_phase
from benchmark.processes import stop, wait
from benchmark.queue_depth import QueueDepthSampler
from benchmark.sampler import phase_sampler
from benchmark.settings import AUTO, BenchSettings
from scoring_bench.stack.process_env import PROJECT_ROOT, process_env
from scoring_bench.stack.supervisor import StackState

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
USER_CLASSES = {
    "sync": "SyncScoringUser",
    "async": "AsyncScoringUser",
    "batched": "BatchedScoringUser",
    "queue": "QueueScoringUser",
}
GRACE_S = 60.0  # beyond the planned duration before a Locust run counts as hung
HOT_GENERATOR_PERCENT = 80.0  # auto workers: a Locust process above this (% of one core) gets help
QUEUE_DEPTH_INTERVAL_S = 0.25
LOCAL_MASTER = "locust_master"  # resources name of a master whose workers run elsewhere


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
        "--failure-backoff-max-s",
        str(settings.locust_failure_backoff_max_s),
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
    if settings.locust_master_url or settings.locust_expect_workers:
        return _run_distributed(settings, state, arch, phase, stages, run_dir, out, tick)
    env = _local_env(settings)
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
            resources = phase_sampler(settings, run_dir / "resources" / f"{phase}_{arch}.csv", targets)
            with resources, _depth_sampler(settings, arch, phase, run_dir):
                wait(procs[0], planned + GRACE_S, tick)
        finally:
            stop(procs)
    if procs[0].returncode not in (0, None):
        raise RuntimeError(f"locust exited with {procs[0].returncode}; see {out / f'{arch}.log'}")
    return out


def _local_env(settings: BenchSettings) -> dict[str, str]:
    """The Locust processes' environment; without our own LOCUST_EXPECT_WORKERS, which Locust itself
    would read (and refuse when 0): every option is on their command line."""
    env = process_env(settings.stack_settings())
    env.pop("LOCUST_EXPECT_WORKERS", None)
    return env


def _queue_options(settings: BenchSettings) -> dict[str, object]:
    """The locustfile's queue options as the master's form names them (sent on to its workers)."""
    return {
        "queue_wait_ms": settings.bench_queue_wait_ms,
        "queue_poll_wait_ms": settings.bench_queue_poll_wait_ms,
        "queue_timeout_s": settings.bench_queue_timeout_s,
        "failure_backoff_max_s": settings.locust_failure_backoff_max_s,
    }


def _run_distributed(
    settings: BenchSettings,
    state: StackState,
    arch: str,
    phase: str,
    stages: list[Stage],
    run_dir: Path,
    out: Path,
    tick: Callable[[float], None],
) -> Path:
    """One phase on a master whose workers run elsewhere: ``LOCUST_MASTER_URL``'s, or the one the
    runner keeps for the run (``LOCUST_EXPECT_WORKERS``), the only Locust process sampled here: as
    ``locust_master``, not as the load generator (``locust``), whose CPU is its workers' and unknown."""
    fixed = _targets(state, [])()
    if settings.locust_master_url:
        url = settings.locust_master_url
    else:
        master = local_master(settings, run_dir)
        url, fixed[LOCAL_MASTER] = master.url, [master.proc.pid]
    planned = sum(s.duration_s for s in stages)
    resources = phase_sampler(settings, run_dir / "resources" / f"{phase}_{arch}.csv", lambda: fixed)
    with resources, _depth_sampler(settings, arch, phase, run_dir):
        drive_phase(
            MasterClient(url),
            USER_CLASSES[arch],
            arch,
            phase,
            [asdict(s) for s in stages],
            _queue_options(settings),
            out,
            planned + GRACE_S,
            tick,
            same_clock=not settings.locust_master_url,
        )
    return out


@dataclass
class LocalMaster:
    """A master the runner started for ``LOCUST_EXPECT_WORKERS``: kept for the whole run, because a
    master that quits tells its workers to quit, and workers on other machines are not restarted."""

    proc: subprocess.Popen[bytes]
    url: str
    key: tuple[str, int, int]


_master: LocalMaster | None = None


def local_master(settings: BenchSettings, run_dir: Path) -> LocalMaster:
    """The run's master (started on first use, log in ``locust/master.log``) once
    ``LOCUST_EXPECT_WORKERS`` workers are connected; raises after ``LOCUST_EXPECT_WORKERS_WAIT_S``."""
    global _master
    key = (settings.locust_master_bind_host, settings.locust_master_bind_port, settings.locust_expect_workers)
    if _master is not None and (_master.key != key or _master.proc.poll() is not None):
        close_local_master()
    if _master is None:
        _master = _start_master(settings, run_dir, key)
    _wait_for_workers(settings, _master)
    return _master


def master_command(settings: BenchSettings, web_port: int) -> list[str]:
    """argv of the run's master: its web UI on loopback (the runner's only), the class picker so one
    master serves every architecture, workers welcome on the bind host and port."""
    return [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--loglevel",
        "WARNING",
        "--master",
        "--master-bind-host",
        settings.locust_master_bind_host,
        "--master-bind-port",
        str(settings.locust_master_bind_port),
        "--web-host",
        "127.0.0.1",
        "--web-port",
        str(web_port),
        "--class-picker",
    ]


def worker_command_hint(settings: BenchSettings) -> str:
    host = settings.locust_master_bind_host
    shown = "<this machine's address>" if host in ("0.0.0.0", "::") else host
    return (
        "HOST=<stack host> .venv/bin/locust -f benchmark/locustfile.py --worker "
        f"--master-host {shown} --master-port {settings.locust_master_bind_port}"
    )


def _start_master(settings: BenchSettings, run_dir: Path, key: tuple[str, int, int]) -> LocalMaster:
    web_port = _free_port()
    (run_dir / "locust").mkdir(parents=True, exist_ok=True)
    with open(run_dir / "locust" / "master.log", "ab") as log:
        proc = subprocess.Popen(
            master_command(settings, web_port),
            env=_local_env(settings),
            cwd=PROJECT_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    master = LocalMaster(proc, f"http://127.0.0.1:{web_port}", key)
    atexit.register(close_local_master)
    return master


def _wait_for_workers(settings: BenchSettings, master: LocalMaster) -> None:
    client = MasterClient(master.url, timeout_s=5.0)
    expected = settings.locust_expect_workers
    deadline = time.monotonic() + settings.locust_expect_workers_wait_s
    connected = 0
    while time.monotonic() < deadline:
        if master.proc.poll() is not None:
            raise RuntimeError(
                f"the Locust master exited with {master.proc.returncode}; see locust/master.log"
            )
        try:
            connected = int(client.status().get("worker_count") or 0)
        except RemoteLocustError:
            connected = 0  # its web UI not up yet
        if connected >= expected:
            return
        time.sleep(0.5)
    raise RuntimeError(
        f"LOCUST_EXPECT_WORKERS={expected}: {connected} Locust worker(s) connected to "
        f"{settings.locust_master_bind_host}:{settings.locust_master_bind_port} within "
        f"{settings.locust_expect_workers_wait_s:.0f} s (LOCUST_EXPECT_WORKERS_WAIT_S). Start them on the "
        f"other machines: {worker_command_hint(settings)}"
    )


def close_local_master() -> None:
    """Stop the run's master, if there is one (its workers quit with it)."""
    global _master
    if _master is not None:
        stop([_master.proc])
        _master = None


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
    if procs:  # none with a master on another machine (LOCUST_MASTER_URL)
        fixed["locust"] = [procs[0].pid]  # standalone, or the master
    fixed.update({f"locust-worker-{i}": [p.pid] for i, p in enumerate(procs[1:], start=1)})
    return lambda: fixed
