"""How long a run will take, printed when it starts (``planned: about N minutes``).

The timed parts come from the knobs (every phase's seconds); the rest is overhead measured on a 2-core
machine of the development kind (2026-11): starting and stopping a stack, starting a Locust or generator
process and waiting for its load shape's first and last tick, one sequential request. A slower machine
takes longer on the overheads; the report says how long the run really took.

Measured 2026-11-30 (2-core AMD EPYC; ``EXPERIMENTS=attribution`` quick, /tmp run attr-quick-1: 336 s, and
the tiny end-to-end run of tests/integration/test_bench_smoke.py, from its files' times): a stack's start
and stop 3.6-6 s; a Locust phase 0.5-0.8 s beyond its stages standalone, 3.5-4 s with a master and workers;
a prefork Celery worker, stopped after a load, took the supervisor's whole stop timeout (10 s) each time.
"""

from __future__ import annotations

from benchmark.attribution import Config, measured, repetitions, studies
from benchmark.burst import burst_sizes
from benchmark.control import planned_control_s
from benchmark.decisive import focused_rates
from benchmark.faults.plan import faults_for, run_seconds
from benchmark.locust_experiment import planned_seconds, repeat_seconds
from benchmark.profile_experiment import MODES, profiled
from benchmark.settings import AUTO, BenchSettings
from scoring_bench.service.queue import is_redis_url

STACK_S = 4.5  # start a stack (every service healthy) and stop it (measured 3.6-6 s)
LOCUST_S = 3.7  # a Locust phase beyond its stages, a master and its workers: processes, ticks, report files
LOCUST_STANDALONE_S = 0.8  # the same for one standalone Locust process
# A prefork Celery worker stopped after a load: the stop waits out the supervisor's timeout (10 s) before
# the kill, beyond STACK_S (the attribution's seed-faithful queue steps; a threads pool stops at once).
PREFORK_STOP_S = 9.0
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


def locust_overhead_s(s: BenchSettings, first: bool) -> float:
    """A Locust phase's time beyond its stages: ``LOCUST_WORKERS=auto`` runs the first phase of an
    architecture (and every attribution load) standalone and the others with a master and workers.
    Workers on other machines: every phase waits for their last records and statistics after it ends
    (1–4 s a phase in results c3-remote-1)."""
    if s.locust_master_url or s.locust_expect_workers:
        return LOCUST_S
    if s.locust_workers == AUTO:
        return LOCUST_STANDALONE_S if first else LOCUST_S
    return LOCUST_S if int(s.locust_workers) else LOCUST_STANDALONE_S


def attribution_config_s(s: BenchSettings, config: Config) -> float:
    """One attribution configuration: its stack, and each architecture's sequential requests and load (with
    the configuration's own knobs: the servers study's)."""
    s = s.model_copy(update=config.bench)
    load = s.bench_attribution_load_s + locust_overhead_s(s, first=True)
    per_arch = s.bench_attribution_timeit * REQUEST_S + load
    stack = STACK_S + (PREFORK_STOP_S if config.overrides.get("queue_worker_pool") == "prefork" else 0.0)
    return stack + repetitions(s, config) * len(measured(s, config)) * per_arch


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
    if "profile" in experiments and s.bench_target == "local":  # an external target: client profiles only
        per_mode = len(profiled(s)) * s.bench_profile_requests * REQUEST_S / s.bench_profile_concurrency
        total += len(MODES) * (STACK_S + per_mode)
    if "timeit" in experiments:
        total += archs * s.bench_timeit_requests * REQUEST_S
    if "locust" in experiments:
        phases = planned_seconds(s)
        overheads = locust_overhead_s(s, first=True) + (len(phases) - 1) * locust_overhead_s(s, first=False)
        total += archs * (sum(phases.values()) + overheads)
        total += archs * (s.bench_repeats - 1) * (repeat_seconds(s) + locust_overhead_s(s, first=False))
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
        total += sum(attribution_config_s(s, config) for config in studies(s))
    return total
