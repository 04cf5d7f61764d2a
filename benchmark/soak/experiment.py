"""The soak: a constant open-loop load on one architecture for ``SOAK_S`` seconds, every service process
sampled meanwhile — does anything grow (memory, descriptors, threads, connections), does the tail slow?

The rate is ``SOAK_RATE`` when set, else ``SOAK_FRACTION`` (0.7) of the architecture's capacity
(:func:`benchmark.capacity.capacity`: this run's ramp peak, else a closed-loop probe of ``SOAK_PROBE_S``).
The load is the open-loop generator (``python -m benchmark.openloop sweep``) with ONE rate for the whole
soak: its latencies count from each request's scheduled send time, so the p99 of the first minute and of
the last are free of coordinated omission. Its files: :mod:`benchmark.soak.records`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from benchmark.capacity import capacity
from benchmark.openloop.experiment import (
    GRACE_S,
    OpenLoopOptions,
    Sampled,
    generator_command,
    run_process,
    sweep_options,
    target_url,
)
from benchmark.openloop.generator import QUEUE_SLACK_S
from benchmark.openloop.records import GENERATOR, GENERATOR_LOG
from benchmark.sampler import phase_sampler
from benchmark.settings import BenchSettings
from benchmark.soak.records import PLAN_JSON, PROCESSES_CSV, soak_dir, soak_resources
from benchmark.soak.sampler import ProcessSampler
from scoring_bench.stack.supervisor import StackState


def soak_options(settings: BenchSettings) -> OpenLoopOptions:
    """The generator's knobs for one rate of ``SOAK_S`` (the open loop's arrivals, seed and connections)."""
    return OpenLoopOptions(
        step_s=settings.soak_s,
        arrivals=settings.bench_open_arrivals,
        seed=settings.bench_open_seed,
        connections=settings.bench_open_connections,
        queue_poll_wait_ms=settings.bench_queue_poll_wait_ms,
        queue_submit_wait_ms=settings.bench_queue_wait_ms,
        queue_timeout_s=settings.bench_queue_timeout_s,
    )


def run_soak(
    settings: BenchSettings,
    state: StackState,
    arch: str,
    run_dir: Path,
    tick: Callable[[float], None] = lambda _: None,
) -> Path:
    """The soak of ``arch`` on the running stack; returns its folder (``soak/<arch>``)."""
    folder = soak_dir(run_dir, arch)
    folder.mkdir(parents=True, exist_ok=True)
    if settings.soak_rate:
        rate, capacity_rps, source = settings.soak_rate, None, "set"
    else:
        measured = capacity(settings, state, arch, run_dir, None, settings.soak_probe_s)
        rate, capacity_rps, source = measured.rate(settings.soak_fraction), measured.rps, measured.source
    plan = {
        "architecture": arch,
        "rate_rps": rate,
        "fraction": None if settings.soak_rate else settings.soak_fraction,
        "capacity_rps": capacity_rps,
        "capacity_source": source,
        "duration_s": settings.soak_s,
        "warmup_s": settings.soak_warmup_s,
        "window_s": settings.soak_window_s,
        "sample_interval_s": settings.soak_sample_s,
    }
    (folder / PLAN_JSON).write_text(json.dumps(plan, indent=1))
    stack = settings.stack_settings()
    options = soak_options(settings)
    argv = generator_command(
        "sweep",
        arch,
        target_url(stack, arch),
        folder,
        stack.num_entities,
        *sweep_options([rate], 0, options, arch),
    )
    limit = settings.soak_s + options.timeout_s(arch) + QUEUE_SLACK_S + GRACE_S
    targets = Sampled(state)  # the stack's services, and the generator while it runs
    services = targets.stack  # the processes sampled one by one: the stack's alone
    interval = settings.soak_sample_s
    with (
        ProcessSampler(folder / PROCESSES_CSV, lambda: services, interval),
        phase_sampler(settings, soak_resources(run_dir, arch), targets, interval),
    ):
        run_process(argv, stack, folder / GENERATOR_LOG, limit, tick, targets, GENERATOR)
    return folder
