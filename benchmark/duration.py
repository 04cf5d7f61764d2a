"""How long a run will take, printed when it starts (``planned: about N minutes``).

The timed parts come from the knobs (every phase's seconds); the rest is overhead measured on a 2-core
machine of the development kind (2026-11): starting and stopping a stack, starting a Locust or generator
process and waiting for its load shape's first and last tick, one sequential request. A slower machine
takes longer on the overheads; the report says how long the run really took.
"""

from __future__ import annotations

from benchmark.attribution import measured, repetitions, studies
from benchmark.burst import burst_sizes
from benchmark.control import planned_control_s
from benchmark.decisive import focused_rates
from benchmark.faults.plan import faults_for, run_seconds
from benchmark.locust_experiment import planned_seconds, repeat_seconds
from benchmark.profile_experiment import MODES, profiled
from benchmark.settings import BenchSettings
from scoring_bench.service.queue import is_redis_url

STACK_S = 3.0  # start a stack (every service healthy) and stop it
LOCUST_S = 2.5  # a Locust phase beyond its stages: processes, the shape's ticks, the report files
GENERATOR_S = 2.0  # the open-loop generator's process beyond its schedule
REQUEST_S = 0.1  # one sequential scoring request (two 40-50 ms model calls, one after another)
CALIBRATION_S = 2.5  # the CPU micro-benchmark and the sleeps, beyond the quiet-machine check
PAUSE_S = 0.5  # between two rates of an open-loop sweep
BURST_S = 4.0  # one burst beyond its stack
FAULT_S = 3.0  # one fault beyond its load: the generator's warm-up, a restart, the stack settling after it
# the queue's faults whose running tasks a Redis broker gives back only after its visibility timeout
REDELIVERING_FAULTS = ("queue-worker-kill", "redis-restart")
# The cross-check's closed loop opens all its connections at once (Locust spawns users over about a
# second): its first seconds are left out.
CROSSCHECK_WARMUP_S = 2.0


def sweep_s(rates: int, step_s: float) -> float:
    return rates * step_s + max(rates - 1, 0) * PAUSE_S + GENERATOR_S


def planned_soak_s(s: BenchSettings) -> float:
    """One architecture's soak: the load and the generator's start and end, and a capacity probe unless
    the rate is set or a ramp ran before it."""
    probe = 0.0 if s.soak_rate or "locust" in s.experiments else s.soak_probe_s + 1.0 + GENERATOR_S
    return s.soak_s + GENERATOR_S + probe


def planned_faults_s(s: BenchSettings) -> float:
    """The faults experiment: a stack per architecture, a capacity probe unless the rate is set or a ramp ran,
    each fault's steady load and its overheads, and for the queue's faults that leave tasks to a dead worker
    on a Redis broker, the wait until they are delivered again (the visibility timeout)."""
    total = 0.0
    for arch in s.architectures:
        faults = [f for f in faults_for(s, arch) if not f.skipped]
        if not faults:
            continue
        probe = 0.0 if s.bench_faults_rate or "locust" in s.experiments else s.bench_faults_probe_s + 1.0
        total += STACK_S + probe + GENERATOR_S
        total += len(faults) * (run_seconds(s) + GENERATOR_S + FAULT_S)
        if arch == "queue" and is_redis_url(s.queue_broker_url):
            redelivered = sum(1 for f in faults if f.name in REDELIVERING_FAULTS)
            after_begin = run_seconds(s) - s.bench_faults_steady_s  # from the fault's start to the load's end
            total += redelivered * max(s.queue_visibility_timeout_s - after_begin, 0.0)
    return total


def planned_duration_s(s: BenchSettings) -> float:
    """The run's expected length in seconds."""
    archs, experiments = len(s.architectures), s.experiments
    total = 2 * (s.bench_calibration_s + CALIBRATION_S) + STACK_S  # before the run and after the main stack
    total += archs * s.bench_verify_requests * REQUEST_S
    if "profile" in experiments:
        per_mode = len(profiled(s)) * s.bench_profile_requests * REQUEST_S / s.bench_profile_concurrency
        total += len(MODES) * (STACK_S + per_mode)
    if "timeit" in experiments:
        total += archs * s.bench_timeit_requests * REQUEST_S
    if "locust" in experiments:
        phases = planned_seconds(s)
        total += archs * (sum(phases.values()) + len(phases) * LOCUST_S)
        total += archs * (s.bench_repeats - 1) * (repeat_seconds(s) + LOCUST_S)
    if "openloop" in experiments:
        rates = len(s.bench_open_rates or s.bench_open_fractions)
        focused = len(focused_rates(list(range(rates)), rates // 2))
        total += archs * sweep_s(rates, s.bench_open_step_s)
        total += archs * (s.bench_repeats - 1) * sweep_s(focused, s.bench_open_step_s)
    if "crosscheck" in experiments:
        total += archs * (s.bench_crosscheck_s + CROSSCHECK_WARMUP_S + GENERATOR_S)
    if s.runs_control():
        total += planned_control_s(s)
    if "soak" in experiments:
        total += archs * planned_soak_s(s)
    if "burst" in experiments:
        total += len(s.bench_burst_concurrencies) * (STACK_S + BURST_S * len(burst_sizes(s)))
    if "faults" in experiments:
        total += planned_faults_s(s)
    if "attribution" in experiments:
        per_arch = s.bench_attribution_timeit * REQUEST_S + s.bench_attribution_load_s + LOCUST_S
        for config in studies(s):
            total += STACK_S + repetitions(s, config) * len(measured(s, config)) * per_arch
    return total
