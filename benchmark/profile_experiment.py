"""Experiment 1 (seed 002): profile each scoring handler under a fixed small load.

The stack is started once per profiler (pyinstrument per request; yappi over the whole process,
wall clock and CPU clock) with profiling switched on by settings; each profiled service writes
its profile when it stops, and the files are merged per architecture into ``profiles/<arch>/``.
The client side of a call is profiled too, against the unprofiled stack. The queue is profiled on both
sides of the broker: its API (``profiles/queue/``; each request submits with ``?wait_ms=`` and is answered
with the task's result, so its wall time holds the wait for the task) and its Celery worker
(``profiles/queue-worker/``: pyinstrument per task, yappi over the processes that run the tasks).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from benchmark import profiles
from benchmark.analysis.raw import QUEUE_WORKER
from benchmark.settings import BenchSettings
from benchmark.timeit_experiment import scoring_url
from scoring_bench.core.endpoints import EXAMPLE_FEATURES
from scoring_bench.core.settings import Settings
from scoring_bench.service.profiling import unprofilable
from scoring_bench.stack.supervisor import running_stack

MODES = ("pyinstrument", "yappi-wall", "yappi-cpu")
log = logging.getLogger("scoring_bench")


def drive(url: str, n: int, concurrency: int, tick: Callable[[int], None]) -> None:
    """``n`` requests from ``concurrency`` clients: a fixed small load, every answer checked."""
    body = {"entity_id": "1", "features": EXAMPLE_FEATURES}
    per_client = [n // concurrency + (1 if i < n % concurrency else 0) for i in range(concurrency)]
    done = 0

    def client(count: int) -> None:
        nonlocal done
        with requests.Session() as session:
            session.trust_env = False
            for _ in range(count):
                resp = session.post(url, json=body, timeout=30)
                if resp.status_code != 200:
                    raise RuntimeError(f"{url} answered {resp.status_code}: {resp.text[:200]}")
                done += 1
                tick(done)

    with ThreadPoolExecutor(concurrency) as pool:
        for future in [pool.submit(client, c) for c in per_client]:
            future.result()


def profiled(settings: BenchSettings) -> list[str]:
    """The architectures the profiler covers: all those asked for, but one whose handler's server cannot be
    profiled (the Flask handler on granian: :func:`scoring_bench.service.profiling.unprofilable`)."""
    return [arch for arch in settings.architectures if unprofilable(settings, f"scoring-{arch}") is None]


def not_profiled(settings: BenchSettings) -> dict[str, str]:
    """The architectures asked for that the profiler leaves out, and why."""
    reasons = {arch: unprofilable(settings, f"scoring-{arch}") for arch in settings.architectures}
    return {arch: reason for arch, reason in reasons.items() if reason is not None}


def profile_url(stack: Settings, arch: str) -> str:
    """The URL a profiled request is sent to: the predict URL; the queue's waits for the task's result
    (``?wait_ms=`` at most QUEUE_MAX_WAIT_MS), so a 200 carries the score as the other handlers' do."""
    url = scoring_url(stack, arch)
    return f"{url}?wait_ms={stack.queue_max_wait_ms}" if arch == "queue" else url


def collect_architecture(raw: Path, arch: str, profiles_dir: Path) -> None:
    """Merge an architecture's profiles: its handler's, and the queue's worker's besides its API's."""
    profiles.collect(raw, f"scoring-{arch}", profiles_dir / arch)
    if arch == "queue":
        profiles.collect(raw, QUEUE_WORKER, profiles_dir / QUEUE_WORKER)


def run_service_profiles(
    settings: BenchSettings, run_dir: Path, update: Callable[[str, float], None]
) -> None:
    n = settings.bench_profile_requests
    for arch, reason in not_profiled(settings).items():  # said in the log and in its profiles folder
        log.warning("profile: %s not profiled: %s", arch, reason)
        (run_dir / "profiles" / arch).mkdir(parents=True, exist_ok=True)
        (run_dir / "profiles" / arch / "not-profiled.txt").write_text(reason + "\n")
    for index, mode in enumerate(MODES):
        raw = run_dir / "profiles" / f"raw-{mode}"
        stack = settings.stack_settings().model_copy(update={"profiler": mode, "profile_dir": raw})
        with running_stack(stack):
            for arch in profiled(settings):
                progress = functools.partial(_progress, update, f"profile {arch}", index * n)
                drive(profile_url(stack, arch), n, settings.bench_profile_concurrency, progress)
        for arch in profiled(settings):
            collect_architecture(raw, arch, run_dir / "profiles")


def _progress(update: Callable[[str, float], None], name: str, before: int, done: int) -> None:
    update(name, before + done)


def run_client_profiles(settings: BenchSettings, arch: str, run_dir: Path) -> None:
    profiles.profile_client(
        profile_url(settings.stack_settings(), arch),  # the target's URLs (SERVICE_URLS), external too
        EXAMPLE_FEATURES,
        max(10, settings.bench_profile_requests // 4),
        run_dir / "profiles" / f"client-{arch}",
    )
