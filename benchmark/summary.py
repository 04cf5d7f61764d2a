"""The summary of a run: the one contract between what measures (``benchmark.analysis``) and what reads
(the report, the plots, the comparison, the targets, the console).

``summary.json`` is :class:`Summary` serialized (``doc/run-folder.md`` describes the fields; this module is
the reference). Every model forbids unknown keys, so a key renamed on one side fails loudly instead of
showing up as a dash in the report. Numbers that are not finite (NaN, ±inf) become None on the way in, so
the file is strict JSON.

Versions: 2 is the first version defined by these models; version 1 files (written by the untyped
``benchmark/analysis.py``) have the same shape and load as they are. 3 adds what makes a number
trustworthy: the open-loop sweep, the repetitions of the headline measurements and their spread, the
verification gate, the machine's calibration and the independent cross-check; versions 1 and 2 load
with those sections absent (None). 4 adds the soak (``soak``: growth per process, the first and last
minute's p99) and the faults under load (``faults``: per fault and architecture the errors, their p99, the
recovery time, the queue's task ledger, a per-second timeline); older versions load with them None.
``control`` (the async handler against the minimal control) is optional: absent, it loads as None.
``environment.target`` (where the stack was: local, or an external target and what was skipped) is optional
too: absent, the run measured its own local stack. ``differs`` (what differs between the two sides of a
comparison, computed from the settings each side recorded: :class:`Differs`) and the sustained section's
per-core and per-process figures are optional everywhere: absent (older files), the report computes what
it can from ``environment.settings``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SCHEMA_VERSION = 4
READABLE_VERSIONS = (1, 2, 3, 4)
SUMMARY_FILE = "summary.json"


class SchemaVersionError(ValueError):
    """A summary.json of a schema version this code does not read."""


def version_problem(found: Any) -> str:
    """What is wrong with ``found`` as a schema version; the versions this code reads."""
    readable = ", ".join(str(version) for version in READABLE_VERSIONS)
    return f"schema version {found!r} is not one this code reads (it reads versions {readable})"


def finite(value: Any) -> Any:
    """``value`` with every NaN or infinity (at any depth of dicts, lists and tuples) replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(item) for item in value]
    return value


class Model(BaseModel):
    """Frozen, no unknown keys, non-finite numbers as None; JSON keys are the aliases (``from``)."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, validate_by_name=True, validate_by_alias=True, serialize_by_alias=True
    )

    @model_validator(mode="before")
    @classmethod
    def _finite_numbers(cls, data: Any) -> Any:
        return finite(data) if isinstance(data, dict) else data


# --------------------------------------------------------------------------- run and environment


class Machine(Model):
    cpu_model: str | None = None
    cores: int | None = None  # logical cores
    physical_cores: int | None = None
    memory_gb: float | None = None
    os: str | None = None
    kernel: str | None = None
    load_average: list[float] | None = None


class Calibration(Model):
    """The machine, measured before the run (benchmark.calibration): how fast one core is, how late
    a sleep wakes up, and whether anything else was using the machine."""

    cpu_benchmark_us: float | None = None  # median time of a fixed CPU micro-benchmark: the unit of CPU cost
    cpu_benchmark: str = ""  # what the micro-benchmark is
    asyncio_sleep_overshoot_ms: float | None = None  # median lateness of asyncio.sleep(45 ms)
    time_sleep_overshoot_ms: float | None = None  # median lateness of time.sleep(45 ms)
    steal_percent: float | None = None  # CPU steal during the check, % of the machine's CPU time
    other_cpu_percent: float | None = None  # CPU of processes that are not the run's, % of one core
    busiest_other: str | None = None  # the busiest of those, "name (pid): N%"
    check_s: float | None = None  # how long the quiet-machine check watched
    warnings: list[str] = Field(default_factory=list)  # a busy machine, high steal


class TargetService(Model):
    """One service as the run reached it: its base URL (None: serves no HTTP) and its metrics URLs."""

    name: str
    url: str | None = None
    metrics: list[str] = Field(default_factory=list)


class SkippedExperiment(Model):
    """An experiment, or part of one, the run did not do against its target, and why."""

    experiment: str
    reason: str


class StackTarget(Model):
    """Where the measured stack was (``BENCH_TARGET``, benchmark/external.py): ``local``, started, restarted
    and stopped by the harness; ``external``, started by someone else, with what the run skipped and why."""

    mode: str = "local"
    services: list[TargetService] = Field(default_factory=list)
    prometheus_url: str | None = None
    file: str | None = None  # the targets file, if one was given
    skipped: list[SkippedExperiment] = Field(default_factory=list)
    problems: list[str] = Field(default_factory=list)  # e.g. metrics URLs that did not answer


class Environment(Model):
    """environment.json as the run recorded it."""

    machine: Machine | None = None
    python: str | None = None
    packages: dict[str, str] | None = None
    git_commit: str | None = None
    settings: dict[str, Any] | None = None  # the stack's settings (scoring_bench.core.settings.Settings)
    bench: dict[str, Any] | None = None  # the benchmark's knobs (benchmark.settings.BenchSettings)
    calibration: Calibration | None = None
    target: StackTarget | None = None  # absent (older runs): the local stack
    # measured again when the main stack's measurements ended: did the machine's speed drift meanwhile?
    calibration_after: Calibration | None = None


# --------------------------------------------------------------------------- what differs


class SettingDifference(Model):
    """One labelled setting whose value differs between the two sides (benchmark/analysis/differs.py)."""

    name: str  # "scoring processes"
    a: str
    b: str


class Differs(Model):
    """What differs between the two sides of one comparison, computed from the settings each side recorded
    (environment.json for the main run, attribution/<study>/<step>/config.json for a study's point), never
    written by hand. ``line`` is what the report prints under the comparison."""

    a: str  # the sides as the report names them ("sync", "async at step 3")
    b: str
    line: str = ""  # "differs: architecture sync vs async; scoring processes 2 vs 1"
    settings: list[SettingDifference] = Field(default_factory=list)
    factor: str = ""  # what the comparison studies ("architecture", "models per request", ...)
    # the labels the factor explains (itself and its inherent consequences); None: not judged (the
    # headline: each architecture at its own tuned default is a legitimate choice, the diff is shown)
    allowed: list[str] | None = None
    confounds: list[SettingDifference] = Field(
        default_factory=list
    )  # differences the factor does not explain


# --------------------------------------------------------------------------- one architecture


class Ideal(Model):
    """The latency of the model calls alone (benchmark.ideal) for the recorded settings."""

    mean_ms: float | None = None
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    description: str = ""


class OneUser(Model):
    users: int = 1
    requests: int = 0
    failures: int = 0
    rps: float | None = None
    mean_ms: float | None = None
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    overhead_p50_ms: float | None = None  # p50 − the ideal p50


class Timeit(Model):
    n: int = 0  # successful sequential requests
    failures: int = 0
    mean_ms: float | None = None
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None


class TimeSplit(Model):
    """Mean server time per request from the Server-Timing headers of the timeit run."""

    feature_store_ms: float = 0.0
    models_ms: float = 0.0
    other_ms: float = 0.0
    n: int | None = None
    concurrent: bool | None = None  # the model calls ran concurrently (their maximum counts)
    # The queue: from the submit to the task's start (publish, broker, pick-up), and from the task's end to
    # the client (result store, notification, the answer); None for the direct handlers.
    queued_ms: float | None = None
    returned_ms: float | None = None
    # batched: the slowest model's wait for its batch to be sent (its call is in models_ms); None otherwise
    batch_wait_ms: float | None = None


class RampStepStats(Model):
    users: int
    rps: float | None = None
    p50_ms: float | None = None
    p95_ms: float | None = None
    failure_ratio: float | None = None
    requests: int = 0


class RampPoint(Model):
    """A step of the ramp singled out: the last good one, or the one of the highest throughput."""

    users: int | None = None
    rps: float | None = None
    step_index: int | None = None


class BreakingPoint(Model):
    """users is None when the ramp did not break (or could not be judged: see ``reason``)."""

    users: int | None = None
    rps: float | None = None
    reason: str = ""
    step_index: int | None = None


class Ramp(Model):
    steps: list[RampStepStats] = Field(default_factory=list)
    breaking_point: BreakingPoint | None = None
    last_good: RampPoint | None = None
    peak: RampPoint | None = None


class Sustained(Model):
    users: int = 0
    duration_s: float | None = None
    requests: int = 0
    failures: int = 0
    rps: float | None = None
    mean_ms: float | None = None
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    failure_ratio: float | None = None
    server_cpu_ms_per_request: float | None = None
    # the CPU per request (the repetitions' median when there are several) in units of the machine's CPU
    # micro-benchmark (calibration): comparable across machines
    server_cpu_per_request_calibrated: float | None = None
    # cores used: the stack services' CPU-seconds per second of the window (doc/methodology.md, "Per-core
    # figures"); req/s per core used = rps ÷ cores_used = 1000 ÷ server_cpu_ms_per_request
    cores_used: float | None = None
    rps_per_core: float | None = None
    scoring_processes: int | None = None  # the side's "scoring processes" (benchmark/analysis/differs.py)
    rps_per_scoring_process: float | None = None


class Recovery(Model):
    users: int = 0
    requests: int = 0
    p50_ms: float | None = None
    failure_ratio: float | None = None
    reference_p50_ms: float | None = None
    recovered: bool | None = None  # None: undecided (no reference latency)


class Stress(Model):
    users: int = 0
    requests: int = 0
    rps: float | None = None
    p50_ms: float | None = None
    p95_ms: float | None = None
    failure_ratio: float | None = None
    recovery: Recovery | None = None


class Saturation(Model):
    load_generator_max_cpu_percent: float | None = None
    machine_max_cpu_percent: float | None = None
    # processes outside the run: the highest of their mean CPU over a phase's measured windows (% of a core)
    others_cpu_percent: float | None = None
    flags: list[str] = Field(default_factory=list)


class EntryStats(Model):
    """One Locust entry of the queue user (submit, poll) within a phase."""

    requests: int = 0
    failures: int = 0
    p50_ms: float | None = None
    p95_ms: float | None = None


class QueuePhase(Model):
    depth_max: float | None = None
    depth_mean: float | None = None
    depth_samples: int = 0
    tasks: int = 0
    submit: EntryStats = Field(default_factory=EntryStats)
    poll: EntryStats = Field(default_factory=EntryStats)
    polls_per_task: float | None = None
    worker_cpu_mean_percent: float | None = None
    worker_cpu_max_percent: float | None = None
    worker_cpu_ms_per_task: float | None = None


class QueueSection(Model):
    phases: dict[str, QueuePhase] = Field(default_factory=dict)
    model_api: str | None = None


class OpenLoopRate(Model):
    """One offered rate of the open-loop sweep: requests sent on a schedule that does not wait for
    the answers. Latencies are from each request's scheduled send time (coordinated-omission-free);
    the ``uncorrected_`` ones from its actual send time."""

    offered_rps: float
    arrivals: str = "poisson"  # poisson | constant
    duration_s: float | None = None
    requests: int = 0  # scheduled
    completed: int = 0  # answered, well or not
    errors: int = 0  # not a valid score (or a failed task), or no answer
    achieved_rps: float | None = None  # valid answers per second of the schedule
    p50_ms: float | None = None
    p90_ms: float | None = None
    p99_ms: float | None = None
    p999_ms: float | None = None
    max_ms: float | None = None
    uncorrected_p50_ms: float | None = None
    uncorrected_p99_ms: float | None = None
    uncorrected_max_ms: float | None = None
    send_lag_p99_ms: float | None = None  # how late the generator sent (scheduled → sent), p99
    held: bool | None = None  # the generator kept the schedule (send lag p99 under its limit)
    generator_cpu_percent: float | None = None  # the generator's peak CPU, % of one core


class OpenLoop(Model):
    """The open-loop sweep of one architecture (its first repetition)."""

    p99_limit_ms: float | None = None  # a rate counts while its p99 stays under this
    rates: list[OpenLoopRate] = Field(default_factory=list)
    # the knee: the highest offered rate whose p99 stays under the limit, every rate below it too
    max_rate_under_limit_rps: float | None = None
    # where the p99 reaches the limit, interpolated between the knee and the next rate: the headline's
    # (and the repetitions') number, continuous so runs with other grids compare
    rate_at_limit_rps: float | None = None


class Repeated(Model):
    """One headline metric over the repetitions of its measurement: the median and the min–max."""

    values: list[float | None] = Field(default_factory=list)  # one per repetition, in order
    median: float | None = None
    min: float | None = None
    max: float | None = None
    n: int = 0  # repetitions that measured a value


class Repeats(Model):
    """The decisive measurements, each repeated ``BENCH_REPEATS`` times as separate short phases."""

    one_user_p50_ms: Repeated | None = None
    sustained_rps: Repeated | None = None
    server_cpu_ms_per_request: Repeated | None = None
    openloop_rate_at_limit_rps: Repeated | None = None


class CrossCheck(Model):
    """Locust against an independent generator, same stack, same concurrency."""

    users: int | None = None
    tool: str = ""  # "wrk", or "openloop (closed loop)"
    locust_rps: float | None = None
    locust_p50_ms: float | None = None
    other_rps: float | None = None
    other_p50_ms: float | None = None
    rps_difference: float | None = None  # other ÷ Locust − 1
    p50_difference: float | None = None
    locust_cpu_percent: float | None = None  # the generators' peak CPU, % of one core
    other_cpu_percent: float | None = None
    disagree: bool | None = None  # a difference above the limit (10%)


class ArchitectureSummary(Model):
    """Every section of one architecture; a section whose raw files are absent is None."""

    ideal: Ideal | None = None
    one_user: OneUser | None = None
    timeit: Timeit | None = None
    time_split: TimeSplit | None = None
    ramp: Ramp | None = None
    sustained: Sustained | None = None
    stress: Stress | None = None
    profile: dict[str, float] | None = None  # share of the handler's wall time by part (breakdown.json)
    # the queue's worker: share of its tasks' wall time by part (profiles/queue-worker/breakdown.json)
    worker_profile: dict[str, float] | None = None
    saturation: Saturation | None = None
    queue: QueueSection | None = None  # the queue architecture only
    openloop: OpenLoop | None = None
    repeats: Repeats | None = None
    crosscheck: CrossCheck | None = None


# --------------------------------------------------------------------------- comparison and burst


class Improvement(Model):
    """async over sync in percent of the sync mean (timeit), with a bootstrap interval."""

    percent: float | None = None
    low: float | None = None
    high: float | None = None
    confidence: float | None = None
    n_sync: int | None = None
    n_async: int | None = None


class BatchedVsAsync(Model):
    """The batching handler against the async one in the same run (doc/batching.md): what batching buys at
    the breaking point, what it costs at one user. Of the repetitions' medians when there are several; the
    ranges pair repetition k of one with repetition k of the other (the runner interleaves them)."""

    sustained_rps_ratio: float | None = None  # batched's max sustained throughput ÷ async's
    sustained_rps_ratio_range: Repeated | None = None  # per repetition pair: median, min–max
    ramp_peak_ratio: float | None = None  # the ramps' highest throughputs, batched ÷ async
    batched_breaking_users: int | None = None  # the users each was sustained at (its ramp's breaking point)
    async_breaking_users: int | None = None
    one_user_p50_cost_ms: float | None = None  # batched's p50 at one user − async's
    one_user_p50_cost_range_ms: Repeated | None = None  # per repetition pair
    ideal_p50_cost_ms: float | None = None  # what the ideals predict: BATCH_MAX_WAIT_MS + one item's cost
    batch_max_wait_ms: float | None = None  # the run's BATCH_MAX_WAIT_MS and BATCH_MAX_SIZE
    batch_max_size: int | None = None
    differs: Differs | None = None  # batched against async on the run's settings


class Comparison(Model):
    timeit_improvement_pct: Improvement | None = None
    batched_vs_async: BatchedVsAsync | None = None  # None: the run did not measure both
    # the headline's comparisons: each architecture against sync, then batched against async
    differs: list[Differs] | None = None


class BurstRun(Model):
    architecture: str | None = None
    concurrency: int | None = None  # the queue's worker concurrency
    tasks: int = 0
    completed: int = 0
    failures: int = 0
    drain_s: float | None = None  # None unless every task succeeded
    last_done_s: float | None = None
    first_done_s: float | None = None
    last_accepted_s: float | None = None
    p50_ms: float | None = None
    p95_ms: float | None = None
    max_ms: float | None = None
    throughput_per_s: float | None = None
    depth_max: float | None = None  # the queue only
    worker_cpu_ms_per_task: float | None = None  # the queue only


class Burst(Model):
    tasks: int | None = None
    runs: list[BurstRun] = Field(default_factory=list)


# --------------------------------------------------------------------------- attribution


class Spread(Model):
    """benchmark.stats.spread of the repetitions."""

    mean: float | None = None
    stdev: float | None = None
    min: float | None = None
    max: float | None = None
    n: int = 0


class Spreads(Model):
    p50_ms: Spread | None = None
    max_rps: Spread | None = None


class WithinNoise(Model):
    p50_ms: bool | None = None
    max_rps: bool | None = None


class Level(Model):
    """One waterfall configuration of one architecture over its repetitions."""

    step: int
    label: str = ""
    reps: int = 0
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    max_rps: float | None = None
    failure_ratio: float | None = None
    spread: Spreads = Field(default_factory=Spreads)
    cpu_ms_per_request: float | None = None  # server CPU per request under load (the queue: per task)
    polls_per_task: float | None = None  # the queue's client under load


class Factor(Model):
    """A waterfall factor: what its step switches (``from`` → ``to``)."""

    step: int
    factor: str = ""
    from_: str = Field("", alias="from")
    to: str = ""


class WaterfallStep(Factor):
    architecture: str
    p50_ms: float | None = None
    delta_p50_ms: float | None = None
    max_rps: float | None = None
    delta_rps: float | None = None
    failure_ratio: float | None = None
    reps: int = 0
    spread: Spreads = Field(default_factory=Spreads)
    within_noise: WithinNoise = Field(default_factory=WithinNoise)
    cpu_ms_per_request: float | None = None  # as Level's
    polls_per_task: float | None = None
    differs: Differs | None = None  # this step's configuration against the step before, same architecture


class GapAt(Model):
    """The sync–async gap of one configuration."""

    latency_gap_ms: float | None = None  # sync p50 − async p50
    throughput_ratio: float | None = None  # async ÷ sync req/s
    throughput_difference_rps: float | None = None  # async − sync req/s
    sync_p50_ms: float | None = None
    async_p50_ms: float | None = None
    sync_rps: float | None = None
    async_rps: float | None = None
    differs: Differs | None = None  # sync against async in this configuration


class GapFactor(Factor):
    gap_change_p50_ms: float | None = None
    gap_change_rps: float | None = None
    share_p50: float | None = None
    share_rps: float | None = None
    differs: Differs | None = None  # the gap at this step: sync against async


class Gap(Model):
    seed_faithful: GapAt | None = None
    tuned: GapAt | None = None
    total_change_p50_ms: float | None = None
    total_change_rps: float | None = None
    factors: list[GapFactor] = Field(default_factory=list)


class StudyEntry(Model):
    """One configuration of the fan-out, cpu or tail study for one architecture, beside its ideal."""

    step: int
    label: str = ""
    architecture: str
    num_models: int | None = None
    model_kind: str = ""
    model_latency: str = ""
    concurrent: bool = False
    reps: int = 0
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    rps: float | None = None
    failure_ratio: float | None = None
    ideal_mean_ms: float | None = None
    ideal_p50_ms: float | None = None
    ideal_p95_ms: float | None = None
    ideal_p99_ms: float | None = None
    ideal_description: str | None = None
    # against sync in the same configuration (None for sync); in the fan-out, against the previous
    # number of models too (the study's own factor)
    differs: Differs | None = None
    differs_previous: Differs | None = None


class QueueFactor(Factor):
    """One factor of the queue's waterfall: how much it moved the queue's p50 at one user and its completed
    tasks/s, and its share of the gap to the ideal (p50 at seed-faithful − the tuned queue's ideal p50: the
    part of that gap the factor closed) and of the throughput's change from seed-faithful to tuned."""

    change_p50_ms: float | None = None
    change_rps: float | None = None
    share_of_ideal_gap: float | None = None
    share_rps: float | None = None


class QueueWaterfall(Model):
    """The queue's waterfall: from the seed-faithful queue (seeds 001/004: Celery's defaults, polled plainly)
    to the tuned one, one factor at a time; beside the ideal p50 of the tuned queue's model calls."""

    steps: list[WaterfallStep] = Field(default_factory=list)
    baseline: Level | None = None  # step 0, seed-faithful
    tuned: Level | None = None  # the last planned step
    ideal_p50_ms: float | None = None  # the tuned configuration's model calls, nothing else
    ideal_description: str | None = None
    seed_ideal_p50_ms: float | None = None  # the seed-faithful configuration's (its calls one after another)
    ideal_gap_seed_ms: float | None = None  # baseline p50 − ideal_p50_ms
    ideal_gap_tuned_ms: float | None = None  # tuned p50 − ideal_p50_ms: what no factor explains
    total_change_rps: float | None = None  # tuned − seed-faithful tasks/s
    factors: list[QueueFactor] = Field(default_factory=list)
    # beyond the tuned queue: the same settings on taskiq instead of Celery (deltas against tuned), no factor
    engine: WaterfallStep | None = None


class ServerLevel(Model):
    """The servers study: one framework on one server over the rounds (means, and each round's spread)."""

    label: str
    framework: str = ""
    server: str = ""
    architecture: str = ""
    rounds: int = 0
    p50_ms: float | None = None
    p50_spread: Spread | None = None
    rps: float | None = None
    rps_spread: Spread | None = None
    cpu_ms_per_request: float | None = None
    cpu_spread: Spread | None = None
    failure_ratio: float | None = None
    differs: Differs | None = None  # against its reference (Flask · gunicorn gthread, or its pair)


class Share(Model):
    """A part of a gap over the gap: the ratio of the means, and its range over the rounds' min–max (None
    with a single round or when the gap's own range reaches zero)."""

    value: float | None = None
    low: float | None = None
    high: float | None = None


class GapSplit(Model):
    """One metric's sync–async gap (p50 at one user: sync − async; throughput: async − sync) between the
    default servers (Flask on gunicorn gthread, FastAPI on uvicorn), the part of it that remains with both
    frameworks on granian (the framework's and its I/O model's), and the part gevent-patched Flask closes."""

    metric: str  # "p50_ms" or "rps"
    gap: float | None = None
    gap_low: float | None = None
    gap_high: float | None = None
    framework_gap: float | None = None  # FastAPI on granian against Flask on granian
    framework: Share = Field(default_factory=Share)  # framework_gap / gap; the servers': 1 − it
    gevent: Share = Field(default_factory=Share)  # (gevent − gthread) / gap, oriented as the gap
    gap_within_noise: bool | None = None  # the gap's range reaches zero: nothing to split
    framework_within_noise: bool | None = None  # the framework's share's range reaches 0 %
    servers_within_noise: bool | None = None  # ... reaches 100 %: the servers' part is within the noise


class ServerFramework(Model):
    """The attribution's servers study (benchmark/attribution_servers.py)."""

    rounds: int = 0
    load_users: int | None = None
    servers: list[ServerLevel] = Field(default_factory=list)
    missing: list[str] = Field(default_factory=list)  # configurations without a measurement
    latency: GapSplit | None = None
    throughput: GapSplit | None = None


class BatchingPoint(Model):
    """One configuration of the attribution's batching study: batched and async measured on the same stack
    (async, without a batcher, does not depend on the batch settings nor on the per-item cost)."""

    step: int
    label: str = ""
    wait_ms: float | None = None  # BATCH_MAX_WAIT_MS
    max_size: int | None = None  # BATCH_MAX_SIZE
    per_item_ms: float | None = None  # MODEL_BATCH_PER_ITEM_MS
    run_batch: bool = False  # the run's own BATCH_MAX_* (the default, or the user's)
    run_per_item: bool = False  # the run's own MODEL_BATCH_PER_ITEM_MS
    yours_batch: bool = False  # ... set explicitly by the user
    yours_per_item: bool = False
    batched: Level | None = None
    async_: Level | None = Field(None, alias="async")
    p50_cost_ms: float | None = None  # batched − async p50 at one user
    p95_cost_ms: float | None = None
    throughput_ratio: float | None = None  # batched ÷ async req/s at load_users
    predicted_p50_cost_ms: float | None = None  # a lone request waits BATCH_MAX_WAIT_MS, then one item's cost
    predicted_ratio: float | None = None  # per-item part: the closed-loop model (BatchingSweep)
    differs: Differs | None = None  # batched against async on this point's stack


class BatchingSweep(Model):
    """The attribution's batching study (benchmark/batching_sweep.py): the grid of BATCH_MAX_WAIT_MS ×
    BATCH_MAX_SIZE (1-user p50 cost against throughput gain over async) and the per-item cost at which
    batching stops paying, measured and as the closed-loop model predicts it: with U users the loop's time
    per request is U ÷ req/s, and raising the per-item cost by Δ adds n × Δ to it (n = min(BATCH_MAX_SIZE,
    U): the whole batch waits for its last item), so batched ÷ async = U ÷ ((U ÷ batched₀ + n × Δ) ×
    async), which is 1 at the predicted break-even."""

    load_users: int | None = None
    model_mean_ms: float | None = None  # one draw of MODEL_LATENCY, the per-item costs' scale
    grid: list[BatchingPoint] = Field(default_factory=list)
    # by per-item cost, at the run's batch settings (with the grid's point there)
    per_item: list[BatchingPoint] = Field(default_factory=list)
    batch_items: int | None = None  # n of the model: min(BATCH_MAX_SIZE, load users)
    break_even: str | None = None  # crossed, pays_throughout, never_pays, no_crossing; None: too few points
    break_even_per_item_ms: float | None = None  # interpolated where batched ÷ async crosses 1 (downwards)
    predicted_break_even_per_item_ms: float | None = None  # the closed-loop model's
    # the n batched's own throughputs imply: its time per request's growth ÷ the per-item cost's
    implied_batch_items: float | None = None
    missing: list[str] = Field(default_factory=list)  # configurations or architectures without a measurement


class Attribution(Model):
    architectures: list[str] = Field(default_factory=list)
    load_users: int | None = None
    missing: list[str] = Field(default_factory=list)  # planned configurations without a measurement
    steps: list[WaterfallStep] = Field(default_factory=list)
    baseline: dict[str, Level] | None = None  # step 0, seed-faithful, by architecture
    tuned: dict[str, Level] | None = None  # the last planned step, by architecture
    gap: Gap | None = None
    fanout: list[StudyEntry] = Field(default_factory=list)
    cpu: dict[str, StudyEntry] | None = None  # its first configuration, by architecture
    cpu_configs: list[StudyEntry] | None = None  # every configuration of the cpu study (None: older files)
    tail: dict[str, StudyEntry] | None = None
    queue: QueueWaterfall | None = None  # the queue's own waterfall (absent: it did not run)
    servers: ServerFramework | None = None  # the server apart from the framework (absent: it did not run)
    batching: BatchingSweep | None = None  # batching's cost and gain (absent: it did not run)


# --------------------------------------------------------------------------- the verification gate


class VerificationRow(Model):
    """One architecture before any load: a fixed number of requests, counted by the services."""

    architecture: str
    requests: int = 0
    valid_answers: int = 0
    feature_store_reads: int | None = None  # Redis GETs counted (INFO commandstats), after − before
    expected_reads: int = 0
    model_calls: int | None = None  # predict and predict_batch requests counted by the model APIs (/metrics)
    expected_model_calls: int = 0
    detail: float | None = None  # the answer to the reference input
    problems: list[str] = Field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems


class Verification(Model):
    rows: list[VerificationRow] = Field(default_factory=list)
    problems: list[str] = Field(default_factory=list)  # across architectures (their answers disagree)

    @property
    def passed(self) -> bool:
        return not self.problems and all(row.passed for row in self.rows)


# --------------------------------------------------------------------------- the soak


class SoakGrowth(Model):
    """One metric of one process over a soak (benchmark/soak/growth.py): the first and the last window's
    medians, the maximum of the first half after the warm-up, the change between the windows in % of the
    first, the least-squares slope per minute after the warm-up, and whether it held (RSS: grew < 10 %; a
    count: flat)."""

    first_median: float | None = None
    first_half_max: float | None = None
    last_median: float | None = None
    change_pct: float | None = None
    slope_per_min: float | None = None
    steady: bool | None = None  # None: not judged (a window without samples)


class SoakProcess(Model):
    """One process of a service during one architecture's soak."""

    service: str  # scoring-sync, model-async, queue-worker, redis, ...
    pid: int
    process: str = ""  # its name: gunicorn, python, redis-server, ...
    role: str = ""  # main (the service's own process) or worker (a child of it)
    samples: int = 0
    first_s: float | None = None  # its first and last sample, s since the soak's start
    last_s: float | None = None
    rss_mb: SoakGrowth = Field(default_factory=SoakGrowth)
    fds: SoakGrowth = Field(default_factory=SoakGrowth)
    threads: SoakGrowth = Field(default_factory=SoakGrowth)
    connections: SoakGrowth = Field(default_factory=SoakGrowth)
    steady: bool | None = None  # every metric held; False: one grew; None: not judged
    note: str | None = None  # why it was not judged (started late, exited during the soak)


class SoakWindow(Model):
    """The open-loop latencies (from the scheduled send time) of the requests scheduled in one window."""

    start_s: float  # since the soak's start
    end_s: float
    requests: int = 0
    errors: int = 0
    p50_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    # CPU meanwhile, means in % of one core: the whole machine, and the processes outside the run (another
    # job on the machine makes the stack slower without being its fault)
    machine_cpu_percent: float | None = None
    others_cpu_percent: float | None = None


class SoakArchitecture(Model):
    """One architecture's soak: the rate, the load's numbers and every process of its path."""

    rate_rps: float | None = None
    fraction: float | None = None  # of capacity_rps; None when SOAK_RATE set the rate
    capacity_rps: float | None = None
    capacity_source: str | None = None  # set | ramp | probe
    duration_s: float | None = None
    warmup_s: float | None = None  # as used: at most half the soak
    window_s: float | None = None  # as used: at most half of what follows the warm-up
    sample_interval_s: float | None = None
    load: OpenLoopRate | None = None  # the whole soak as one open-loop rate
    first_window: SoakWindow | None = None
    last_window: SoakWindow | None = None
    p99_change_pct: float | None = None  # the last window's p99 against the first's
    minutes: list[SoakWindow] = Field(default_factory=list)  # every window_s from the start
    processes: list[SoakProcess] = Field(default_factory=list)  # the architecture's path
    steady: bool | None = None  # every process of its path held


class Soak(Model):
    architectures: dict[str, SoakArchitecture] = Field(default_factory=dict)


# --------------------------------------------------------------------------- faults under load


class FaultSecond(Model):
    """One second of a fault run, ``t_s`` after the fault began (negative: before): the requests scheduled
    in it, and the answers that came back in it — valid ones (the throughput), failed ones by outcome (HTTP
    status, FAILURE, timeout, no answer) — and their p95 wait (from the scheduled send time)."""

    t_s: int
    sent: int = 0
    answered: int = 0
    ok_done: int = 0
    errors: int = 0
    by_outcome: dict[str, int] = Field(default_factory=dict)
    p95_ms: float | None = None


class TaskLedger(Model):
    """The queue: every task the API accepted, and how it ended (benchmark/faults/ledger.py)."""

    accepted: int = 0
    succeeded: int = 0
    failed: int = 0  # an explicit FAILURE
    unfinished: int = 0  # still PENDING, STARTED or RETRY when the wait ended
    unknown: int = 0  # the API no longer knew the id (404)
    unreachable: int = 0  # the API did not answer
    lost: int = 0  # accepted − (succeeded + failed): must be 0
    ran_twice: int | None = None  # tasks with an attempt that started more than once; None: not counted
    extra_runs: int | None = None
    runs_unknown: int | None = None  # ended tasks without a counted run
    waited_s: float | None = None  # how long the ledger waited for the tasks to end, after the run
    wait_limit_s: float | None = None  # the longest it would wait, from the fault's end


class FaultRun(Model):
    """One fault on one architecture under its steady load (times in s from the start of the load)."""

    fault: str
    architecture: str
    label: str = ""
    skipped: str | None = None  # why it did not run
    target: str | None = None  # the process hit (its supervisor name)
    offered_rps: float | None = None
    capacity_rps: float | None = None
    capacity_source: str | None = None  # set | ramp | probe
    duration_s: float | None = None  # the steady load's length
    fault_start_s: float | None = None
    fault_end_s: float | None = None  # when its end began (restart, SIGCONT)
    ready_s: float | None = None  # when that was done (the process back and healthy)
    requests: int = 0
    errors: int = 0
    errors_by_outcome: dict[str, int] = Field(default_factory=dict)
    error_ratio: float | None = None
    timed_errors: int = 0  # the failed answers whose time counts (the queue: refused submits)
    error_p99_ms: float | None = None
    error_limit_ms: float | None = None  # the relevant timeout + 200 ms
    timeout_name: str | None = None  # which timeout
    fast_failure: bool | None = None  # error p99 ≤ limit; None: nothing failed
    baseline_p50_ms: float | None = None  # the p50 wait before the fault
    baseline_error_ratio: float | None = None
    recovery_s: float | None = None  # from the fault's end to the first recovered 2 s window of answers
    recovered: bool | None = None  # False: no window recovered before the load ended
    ledger: TaskLedger | None = None
    notes: list[str] = Field(default_factory=list)  # what the injection did
    problems: list[str] = Field(default_factory=list)
    timeline: list[FaultSecond] = Field(default_factory=list)


class Faults(Model):
    steady_s: float | None = None
    window_s: float | None = None
    recover_s: float | None = None
    fraction: float | None = None  # of each architecture's capacity
    rate_rps: float | None = None  # set for every architecture instead
    redis_aof: str | None = None  # the embedded Redis's append-only file (None: REDIS_URL)
    runs: list[FaultRun] = Field(default_factory=list)
    problems: list[str] = Field(default_factory=list)


# --------------------------------------------------------------------------- the minimal control


class ControlRep(Model):
    """One repetition of the async handler ("product") against the minimal control, measured interleaved."""

    rep: int
    first: str | None = None  # the handler measured first in this repetition
    product_rps: float | None = None  # at ``users`` connections, closed loop
    control_rps: float | None = None
    ratio: float | None = None  # product_rps / control_rps
    product_errors: int | None = None  # non-2xx answers and socket errors under load
    control_errors: int | None = None
    product_p50_ms: float | None = None  # sequential requests of one user
    control_p50_ms: float | None = None
    p50_diff_ms: float | None = None  # product − control
    product_cpu_ms: float | None = None  # the handler's CPU per request over the closed loop
    control_cpu_ms: float | None = None


class Control(Model):
    """The async handler against the minimal control (benchmark/control.py): throughput as a ratio of the
    control's (median and range of the repetitions), the p50 at one user as a difference, the targets."""

    users: int | None = None
    duration_s: float | None = None
    requests: int | None = None  # sequential requests per handler and repetition
    tool: str | None = None  # wrk | generator
    reps: list[ControlRep] = Field(default_factory=list)
    ratio_median: float | None = None
    ratio_min: float | None = None
    ratio_max: float | None = None
    p50_diff_ms: float | None = None  # the pooled sequential requests' p50s: product − control
    p50_diff_min_ms: float | None = None  # of the repetitions
    p50_diff_max_ms: float | None = None
    product_cpu_ms: float | None = None  # medians of the repetitions
    control_cpu_ms: float | None = None
    ratio_target: float = 1.0
    p50_target_ms: float = 0.5
    meets_ratio: bool | None = None  # ratio_median ≥ ratio_target
    meets_p50: bool | None = None  # p50_diff_ms ≤ p50_target_ms
    problems: list[str] = Field(default_factory=list)


# --------------------------------------------------------------------------- the summary


class Summary(Model):
    schema_version: int = SCHEMA_VERSION
    run_id: str
    complete: bool = False
    profile: str | None = None
    started_at: float | None = None  # epoch s
    finished_at: float | None = None
    errors: list[str] = Field(default_factory=list)
    experiments: list[str] | None = None  # None: run.json did not say
    environment: Environment | None = None
    architectures: dict[str, ArchitectureSummary] = Field(default_factory=dict)
    comparison: Comparison = Field(default_factory=Comparison)
    attribution: Attribution | None = None
    burst: Burst | None = None
    verification: Verification | None = None
    soak: Soak | None = None
    faults: Faults | None = None
    control: Control | None = None

    @field_validator("schema_version")
    @classmethod
    def _readable(cls, version: int) -> int:
        if version not in READABLE_VERSIONS:
            raise ValueError(version_problem(version))
        return version

    def to_json(self) -> str:
        """Strict JSON (no NaN), keys in the models' order, indented: what summary.json holds."""
        data = self.model_dump(mode="json")
        return json.dumps(data, indent=2, allow_nan=False, ensure_ascii=False) + "\n"

    def write(self, path: Path) -> Path:
        """Write to ``path`` (a run folder: its summary.json); return the file written."""
        path = _file(path)
        path.write_text(self.to_json(), encoding="utf-8")
        return path

    @classmethod
    def from_json(cls, text: str, source: str = SUMMARY_FILE) -> Summary:
        """Parse ``text``; :class:`SchemaVersionError` when its version is not readable, pydantic's
        ``ValidationError`` when a key is unknown or a value of the wrong type."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError(f"{source}: not a JSON object")
        version = data.get("schema_version")
        if isinstance(version, bool) or version not in READABLE_VERSIONS:
            raise SchemaVersionError(f"{source}: {version_problem(version)}")
        return cls.model_validate(data, by_alias=True, by_name=False)  # a file says "from", never "from_"

    @classmethod
    def load(cls, path: Path) -> Summary:
        """The summary in ``path`` (a summary.json, or a run folder holding one)."""
        path = _file(path)
        return cls.from_json(path.read_text(encoding="utf-8"), str(path))


def _file(path: Path) -> Path:
    path = Path(path)
    return path / SUMMARY_FILE if path.is_dir() else path
