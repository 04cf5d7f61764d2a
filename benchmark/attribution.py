"""Attribution of the sync–async gap, and of the queue's distance from its ideal: which choice explains
how much of it.

Five studies, each a list of stack configurations; the first four are measured for sync and async:

* ``waterfall``: from the ``seed-faithful`` preset, switch one factor at a time to its tuned
  value (cumulatively), ending at ``tuned``; repeated ``BENCH_ATTRIBUTION_REPEATS`` times;
* ``fanout``: ``NUM_MODELS`` 1, 2, 4, 8 (16 in full);
* ``cpu``: the ``cpu`` model kind (it burns CPU instead of sleeping), at equal model API processes, then
  at equal scoring processes too (:func:`cpu_study`);
* ``tail``: long-tailed (lognormal) model latency with a fan-out of 4;
* ``queue``: the queue's own waterfall, measured for the queue: from the seed-faithful queue (seeds
  001/004: Celery's defaults, polled plainly by its client) to the tuned one, one factor
  (:data:`QUEUE_FACTORS`) at a time, repeated like ``waterfall``. A factor whose seed-faithful value is
  already the tuned one is no step.

Beside them, ``batching`` (benchmark/batching_sweep.py) measures the batching handler against async on a
stack per point: BATCH_MAX_WAIT_MS × BATCH_MAX_SIZE, then MODEL_BATCH_PER_ITEM_MS.

Every configuration declares what it compares (``Config.varies``, ``Config.consequences``):
tests/unit/test_study_configs.py checks each study's configurations against it, and plan.json records it
for the report, so that a new default cannot silently confound a study.

Each measurement is p50/p95/p99 of sequential requests at one user (timeit; the queue's go through its
client, submit to result) and the throughput of ``BENCH_ATTRIBUTION_USERS`` closed-loop users (Locust;
the queue's: completed tasks/s). Raw files stay under ``attribution/<study>/<step>/``; one row per
measurement goes to ``attribution/measurements.csv``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark import attribution_servers as servers
from benchmark import batching_sweep as batching
from benchmark.analysis import differs
from benchmark.analysis.phases import cpu_seconds, service_names, window_stats
from benchmark.analysis.raw import read_requests, read_resources, read_schedule, resource_path
from benchmark.entries import POLL
from benchmark.load import Stage, run_phase
from benchmark.queue_client import QueueClientOptions
from benchmark.settings import REQUEST_RESPONSE, BenchSettings
from benchmark.stats import percentiles
from benchmark.timeit_experiment import run_timeit
from scoring_bench.core.presets import PRESETS, SEED_HANDLERS, SEED_QUEUE
from scoring_bench.core.settings import Settings
from scoring_bench.stack.supervisor import running_stack

COLUMNS = [
    "study",
    "step",
    "label",
    "factor",
    "from",
    "to",
    "arch",
    "rep",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "one_user_n",
    "rps",
    "failure_ratio",
    "load_users",
    "num_models",
    "model_kind",
    "model_latency",
    "cpu_ms_per_request",
    "polls_per_task",
]


@dataclass(frozen=True)
class Factor:
    """One choice the seed made differently from the tuned stack."""

    name: str
    changes: dict[str, Any]  # the settings the factor switches to their tuned values
    describe: Callable[[Settings], str]


def _workers(prefix: str) -> Callable[[Settings], str]:
    def describe(s: Settings) -> str:
        worker_class, workers = getattr(s, prefix + "_worker_class"), getattr(s, prefix + "_workers")
        if worker_class in ("gthread", "gevent"):  # threads or greenlets per worker
            return f"{worker_class} {workers}×{getattr(s, prefix + '_threads')}"
        return f"{worker_class} {workers}"

    return describe


# In the order the waterfall switches them: the seed's most expensive choices first.
FACTORS: tuple[Factor, ...] = (
    Factor(
        "HTTP client lifetime",
        {"http_client_lifetime": ...},
        lambda s: f"client per {s.http_client_lifetime}",
    ),
    Factor(
        "HTTP client library",
        {"sync_http_client": ..., "async_http_client": ...},
        lambda s: f"{s.sync_http_client} / {s.async_http_client}",
    ),
    Factor("Redis client in the async handler", {"async_redis_client": ...}, lambda s: s.async_redis_client),
    Factor(
        "sync servers",
        {
            "scoring_sync_worker_class": ...,
            "scoring_sync_workers": ...,
            "scoring_sync_threads": ...,
            "model_sync_worker_class": ...,
            "model_sync_workers": ...,
            "model_sync_threads": ...,
        },
        lambda s: f"handler {_workers('scoring_sync')(s)}, model {_workers('model_sync')(s)}",
    ),
    Factor(
        "uvicorn workers",
        {"scoring_async_workers": ..., "model_async_workers": ...},
        lambda s: f"{s.scoring_async_workers} + {s.model_async_workers}",
    ),
)


QUEUE_STUDY = "queue"
WATERFALLS = ("waterfall", QUEUE_STUDY)  # the studies whose steps are repeated
# How the client waits for a task. Plain polling (seeds 001/004): the submit answers at once (202) and the
# client asks for the status again as soon as it has an answer (``?wait_ms=0``: no wait on the server; the
# benchmark's client has no pause of its own between polls). The tuned client long-polls: the benchmark's
# own queue client, as the timeit and locust experiments run it.
PLAIN_POLLING, LONG_POLL = "plain polling", "long poll"
CLIENT_FACTOR = "client polling"
# The queue waterfall's step beyond the tuned queue (``BENCH_ATTRIBUTION_STUDIES`` has ``engine``): the
# same tuned settings on taskiq instead of Celery — how much of the tuned queue's cost is its engine's. The
# analysis keeps it apart from the factors (benchmark/analysis/attribution.py has the same name).
ENGINE_FACTOR = "engine"


def _queue_pool(s: Settings) -> str:
    return f"{s.queue_worker_pool} ×{s.queue_worker_concurrency}"


# The queue's factors, in the order its waterfall switches them (the client's first: it is the seeds').
QUEUE_FACTORS: tuple[Factor, ...] = (
    Factor(CLIENT_FACTOR, {}, lambda s: ""),  # the client's, not the stack's: see Config.client
    Factor("wake-up", {"queue_wakeup": ...}, lambda s: s.queue_wakeup),
    Factor("publish", {"queue_publish": ...}, lambda s: s.queue_publish),
    Factor("serializer", {"queue_serializer": ...}, lambda s: s.queue_serializer),
    Factor("message repr", {"queue_message_repr": ...}, lambda s: s.queue_message_repr),
    Factor("broker client", {"queue_broker_client": ...}, lambda s: f"client per {s.queue_broker_client}"),
    Factor("worker pool", {"queue_worker_pool": ..., "queue_worker_concurrency": ...}, _queue_pool),
    Factor("prefetch", {"queue_prefetch_multiplier": ...}, lambda s: f"×{s.queue_prefetch_multiplier}"),
    Factor("acks", {"queue_acks_late": ...}, lambda s: "late" if s.queue_acks_late else "early"),
    Factor(
        "result bookkeeping",
        {"queue_track_started": ..., "queue_result_read_before_success": ..., "queue_result_expires_s": ...},
        lambda s: (
            f"STARTED {'stored' if s.queue_track_started else 'not stored'}, "
            f"{'read before SUCCESS' if s.queue_result_read_before_success else 'SUCCESS stored unread'}, "
            f"kept {s.queue_result_expires_s:,} s"
        ),
    ),
    Factor("model calls", {"queue_model_calls": ...}, lambda s: s.queue_model_calls),
)


@dataclass
class Config:
    study: str
    step: int
    label: str
    overrides: dict[str, Any]
    factor: str = ""
    before: str = ""
    after: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    architectures: tuple[str, ...] = ("sync", "async")  # the ones measured (of those the run drives)
    client: str = ""  # the queue's: PLAIN_POLLING or LONG_POLL ("": the benchmark's own client)
    labels: dict[str, str] = field(default_factory=dict)  # an architecture's row label, if not ``label``
    bench: dict[str, Any] = field(default_factory=dict)  # benchmark knobs of its own (the servers study)
    # What the configuration compares, declared beside it (tests/unit/test_study_configs.py checks it):
    # the stack settings it may set differently from the configuration before it in its study (the first:
    # from the run's own stack) — its factor and the factor's consequences ...
    varies: frozenset[str] = frozenset()
    # ... and the labels of benchmark/analysis/differs.py its architectures' sides may differ in beyond
    # the architecture itself (differs.ARCHITECTURE_CONSEQUENCES): anything else is a confound.
    consequences: frozenset[str] = frozenset()


# Each architecture at its own process counts, as the headline runs them (sync's scoring and model API on
# 2 processes, async's on 1, by default): declared by the studies whose factor is not the process count,
# so that the report says it ("differs: ... scoring processes 2 vs 1") instead of flagging it.
OWN_PROCESS_COUNTS = frozenset({differs.SCORING_PROCESSES, differs.MODEL_PROCESSES})
CPU_STUDY = "cpu"
MODEL_PROCESS_SETTINGS = ("model_sync_workers", "model_async_workers")
SCORING_PROCESS_SETTINGS = ("scoring_sync_workers", "scoring_async_workers")


def tuned_values(names: list[str]) -> dict[str, Any]:
    """The tuned value of each setting: its default under the ``tuned`` preset."""
    tuned = Settings(scoring_preset="tuned")
    return {name: getattr(tuned, name) for name in names}


def waterfall(base: BenchSettings) -> list[Config]:
    """seed-faithful, then one more factor switched to tuned at each step (ends at tuned).

    Settings the user set explicitly stay as they are in every step (a preset only fills in).
    """
    seed = dict(SEED_HANDLERS)
    explicit = _stack_values(base)
    configs = [
        Config(
            "waterfall",
            0,
            "seed-faithful",
            {"scoring_preset": "seed-faithful"},
            varies=frozenset(PRESETS["seed-faithful"]),  # the preset's fill-ins (the queue's seed too)
            consequences=OWN_PROCESS_COUNTS,
        )
    ]
    switched: dict[str, Any] = {}
    previous = Settings(**explicit, scoring_preset="seed-faithful")
    for step, factor in enumerate(FACTORS, start=1):
        switched.update(tuned_values([name for name in factor.changes if name not in explicit]))
        overrides = {"scoring_preset": "seed-faithful", **switched}
        current = Settings(**{**explicit, **overrides})
        configs.append(
            Config(
                "waterfall",
                step,
                f"+ {factor.name}",
                overrides,
                factor.name,
                factor.describe(previous),
                factor.describe(current),
                varies=frozenset(factor.changes),
                consequences=OWN_PROCESS_COUNTS,
            )
        )
        previous = current
    assert all(k in switched or k in explicit for k in seed), "every seed choice must be switched by a factor"
    return configs


def queue_waterfall(base: BenchSettings) -> list[Config]:
    """The queue's waterfall: the seed-faithful queue polled plainly, then one more factor switched to its
    tuned value at each step (the client's first: plain polling → long poll), ending at the tuned queue.
    A factor whose seed-faithful value is already the tuned one (or that the user set) is no step."""
    archs = (QUEUE_STUDY,)
    explicit = _stack_values(base)
    seed = {k: v for k, v in SEED_QUEUE.items() if k not in explicit}
    configs = [
        Config(
            QUEUE_STUDY,
            0,
            "seed-faithful",
            dict(seed),
            architectures=archs,
            client=PLAIN_POLLING,
            varies=frozenset(seed),
        )
    ]
    switched: dict[str, Any] = {}
    client = PLAIN_POLLING
    previous = Settings(**explicit, **seed)
    for factor in QUEUE_FACTORS:
        if factor.name == CLIENT_FACTOR:
            before, after, client = PLAIN_POLLING, LONG_POLL, LONG_POLL
        else:
            names = [name for name in factor.changes if name in seed]
            tuned = tuned_values(names)
            if all(tuned[name] == seed[name] for name in names):
                continue
            switched.update(tuned)
            current = Settings(**explicit, **{**seed, **switched})
            before, after = factor.describe(previous), factor.describe(current)
            previous = current
        configs.append(
            Config(
                QUEUE_STUDY,
                len(configs),
                f"+ {factor.name}",
                {**seed, **switched},
                factor.name,
                before,
                after,
                architectures=archs,
                client=client,
                varies=frozenset(factor.changes),  # the client's step: none (Config.client changes)
            )
        )
    assert set(SEED_QUEUE) <= {n for f in QUEUE_FACTORS for n in f.changes}, "a seed choice without a factor"
    engine = _engine_step(base, explicit, {**seed, **switched}, len(configs), client)
    return configs + ([engine] if engine is not None else [])


def _engine_step(
    base: BenchSettings, explicit: dict[str, Any], tuned: dict[str, Any], step: int, client: str
) -> Config | None:
    """The tuned queue on taskiq (after the tuned step), unless not asked for, the user chose the engine, or
    the broker is one taskiq cannot use (RabbitMQ: the settings refuse it)."""
    if ENGINE_FACTOR not in base.bench_attribution_studies or "queue_engine" in explicit:
        return None
    overrides = {**tuned, "queue_engine": "taskiq"}
    try:
        Settings(**explicit, **overrides)
    except ValueError:
        return None
    archs = (QUEUE_STUDY,)
    return Config(
        QUEUE_STUDY,
        step,
        "+ engine",
        overrides,
        ENGINE_FACTOR,
        "Celery",
        "taskiq",
        architectures=archs,
        client=client,
        varies=frozenset({"queue_engine"}),
    )


def _stack_values(base: BenchSettings) -> dict[str, Any]:
    """The user's explicit stack settings, without the preset's fill-ins."""
    explicit = base.model_fields_set & set(Settings.model_fields)
    return {name: getattr(base, name) for name in explicit if name != "scoring_preset"}


def studies(base: BenchSettings) -> list[Config]:
    """Every configuration the run measures: the sync–async studies when it drives sync or async, the
    queue's waterfall when it drives the queue."""
    configs = _gap_studies(base) if attributed(base) else []
    if QUEUE_STUDY in base.bench_attribution_studies and QUEUE_STUDY in base.architectures:
        configs += queue_waterfall(base)
    return configs + batching_study(base)


def batching_study(base: BenchSettings) -> list[Config]:
    """The batching study (benchmark/batching_sweep.py): batched and async on a stack per point."""
    return [
        Config(
            batching.BATCHING_STUDY,
            step,
            point.label,
            point.overrides,
            factor=point.part,
            meta=point.meta,
            architectures=batching.ARCHITECTURES,
            varies=BATCHING_VARIES[point.part],
        )
        for step, point in enumerate(batching.points(base))
    ]


# The batching study's points: the grid's move its batch knobs; the per-item part's its per-item cost, and
# its first point returns the batch knobs from the grid's last point to the run's.
BATCHING_VARIES = {
    batching.GRID: frozenset(batching.BATCH_KNOBS),
    batching.PER_ITEM: frozenset({*batching.BATCH_KNOBS, batching.PER_ITEM_KNOB}),
}


def _gap_studies(base: BenchSettings) -> list[Config]:
    configs = waterfall(base) if "waterfall" in base.bench_attribution_studies else []
    if "fanout" in base.bench_attribution_studies:
        configs += [
            Config(
                "fanout",
                i,
                f"{n} models",
                {"num_models": n},
                meta={"num_models": n},
                varies=frozenset({"num_models"}),
                consequences=OWN_PROCESS_COUNTS,
            )
            for i, n in enumerate(base.bench_fanout)
        ]
    if CPU_STUDY in base.bench_attribution_studies:
        configs += cpu_study(base)
    if "tail" in base.bench_attribution_studies:
        configs.append(
            Config(
                "tail",
                0,
                "lognormal latency, 4 models",
                {"model_latency": "lognormal", "num_models": 4},
                varies=frozenset({"model_latency", "num_models"}),
                consequences=OWN_PROCESS_COUNTS,
            )
        )
    if servers.STUDY in base.bench_attribution_studies:
        configs += servers_study(base)
    return configs


def cpu_study(base: BenchSettings) -> list[Config]:
    """A model that burns CPU, sync against async with the same CPU to burn it on: first the same number of
    model API processes on both sides (:func:`equal_counts`); then the same number of scoring processes too.

    A CPU-bound model makes the model API the bottleneck, so at the defaults' 2 sync model processes against
    1 async one the study would measure process counts, not sync against async (issue 17)."""
    explicit = _stack_values(base)
    models = {"model_kind": "cpu", **equal_counts(explicit, MODEL_PROCESS_SETTINGS)}
    return [
        Config(
            CPU_STUDY,
            0,
            "equal model API processes",
            models,
            varies=frozenset({"model_kind", *MODEL_PROCESS_SETTINGS}),
            consequences=frozenset({differs.SCORING_PROCESSES}),  # each its own: the next row equals them
        ),
        Config(
            CPU_STUDY,
            1,
            "equal model API and scoring processes",
            {**models, **equal_counts(explicit, SCORING_PROCESS_SETTINGS)},
            varies=frozenset(SCORING_PROCESS_SETTINGS),
        ),
    ]


def equal_counts(explicit: dict[str, Any], names: tuple[str, ...]) -> dict[str, int]:
    """The process counts ``names`` (sync's, async's) made equal: to the larger of their defaults (2 model
    API processes, 2 scoring processes: sync's, one per core on a 2-core machine), or to the one the user
    set. Both set by the user: as they are (the report then flags the difference)."""
    chosen = [explicit[name] for name in names if name in explicit]
    if len(chosen) == len(names):
        return {}
    defaults = Settings(**explicit)  # the preset the run uses fills in the defaults
    count = chosen[0] if chosen else max(getattr(defaults, name) for name in names)
    return {name: count for name in names if name not in explicit}


def side_confounds(settings: Settings, config: Config) -> list[differs.Difference]:
    """What the configuration's two architectures differ in beyond the architecture and its declared
    consequences (none when it measures one architecture)."""
    if len(config.architectures) != 2:
        return []
    first, second = config.architectures
    allowed = differs.ARCHITECTURE_CONSEQUENCES | config.consequences
    return differs.confounds(differs.compare_sides(settings, first, settings, second), allowed)


def servers_study(base: BenchSettings) -> list[Config]:
    """The servers study (benchmark/attribution_servers.py): a stack per pair of configurations, in rounds."""
    return [
        Config(
            servers.STUDY,
            stack.step,
            stack.label,
            stack.overrides,
            architectures=stack.architectures,
            labels=stack.labels,
            bench=servers.bench_overrides(base),
            varies=SERVER_SETTINGS,
            consequences=OWN_PROCESS_COUNTS,
        )
        for stack in servers.plan(base.bench_servers_rounds)
    ]


# The servers study's stacks move only the settings that choose a server.
SERVER_SETTINGS = frozenset(name for server in servers.SERVERS for name in server.overrides)


def config_settings(base: BenchSettings, config: Config, stack_dir: Path) -> Settings:
    values = {**_stack_values(base), **config.overrides, "stack_dir": stack_dir}
    return Settings(**values)


def measure(
    base: BenchSettings, config: Config, run_dir: Path, tick: Callable[[], None]
) -> list[dict[str, Any]]:
    """Start the configuration's stack and measure both architectures; one row per arch and rep."""
    folder = run_dir / "attribution" / config.study / str(config.step)
    base = base.model_copy(update=config.bench)
    settings = config_settings(base, config, base.stack_dir)
    bench = base.model_copy(update=settings.model_dump())
    timeit_options: QueueClientOptions | None = None
    if config.client == PLAIN_POLLING:  # the load's queue users and the one user poll without waiting
        bench = bench.model_copy(update={"bench_queue_wait_ms": 0, "bench_queue_poll_wait_ms": 0})
        timeit_options = QueueClientOptions(0, 0, base.bench_queue_timeout_s)
    rows = []
    with running_stack(settings) as state:
        for rep in range(repetitions(base, config)):
            for arch in measured(base, config):
                rep_dir = folder / f"rep-{rep}"
                timeit_csv = run_timeit(
                    settings,
                    arch,
                    base.bench_attribution_timeit,
                    rep_dir / "timeit",
                    queue_timeout_s=base.bench_queue_timeout_s,
                    queue_options=timeit_options,
                )
                latencies = _ok_latencies(timeit_csv)
                stage = Stage(
                    base.bench_attribution_users,
                    base.bench_attribution_load_s,
                    min(base.bench_warmup_s, base.bench_attribution_load_s / 3),
                )
                run_phase(bench, state, arch, "load", [stage], rep_dir)
                steps = read_schedule(rep_dir, "load", arch) or []
                stats = window_stats(read_requests(rep_dir, "load", arch), steps[0]) if steps else None
                row = _row(config, settings, arch, rep, latencies, stats)
                if steps and stats is not None and stats.requests:
                    row.update(_cost(rep_dir, settings, arch, steps[0].window, stats.requests))
                rows.append(row)
                tick()
    (folder / "config.json").write_text(
        json.dumps(
            {
                "label": config.label,
                "overrides": config.overrides,
                "client": config.client,
                "settings": settings.model_dump(mode="json"),
            },
            indent=1,
        )
    )
    return rows


def _cost(
    rep_dir: Path, settings: Settings, arch: str, window: tuple[float, float], requests: int
) -> dict[str, float | None]:
    """The load's server CPU per request (per completed task for the queue: its API, worker, model API and
    Redis) and, for the queue, the client's polls per task, over the measured window."""
    samples = read_resources(resource_path(rep_dir, "load", arch))
    cpu_s = cpu_seconds(samples, service_names(arch, settings), window)
    polls = None
    if arch == "queue":
        low, high = window
        entries = read_requests(rep_dir, "load", arch, name=POLL)  # "queue poll"; "poll" in old folders
        polls = sum(1 for request in entries if low <= request.t <= high) / requests
    cpu_ms = cpu_s * 1000 / requests if cpu_s is not None else None
    return {"cpu_ms_per_request": cpu_ms, "polls_per_task": polls}


def _ok_latencies(path: Path) -> list[float]:
    with open(path, newline="") as f:
        return [float(r["latency_ms"]) for r in csv.DictReader(f) if r["status"] == "200"]


def _row(
    config: Config, settings: Settings, arch: str, rep: int, latencies: list[float], stats: Any
) -> dict[str, Any]:
    pct = percentiles(latencies) if latencies else {}
    return {
        "study": config.study,
        "step": config.step,
        "label": config.labels.get(arch, config.label),
        "factor": config.factor,
        "from": config.before,
        "to": config.after,
        "arch": arch,
        "rep": rep,
        "p50_ms": pct.get("p50"),
        "p95_ms": pct.get("p95"),
        "p99_ms": pct.get("p99"),
        "one_user_n": len(latencies),
        "rps": getattr(stats, "rps", None),
        "failure_ratio": (stats.failures / stats.requests) if stats and stats.requests else None,
        "load_users": stats.users if stats else None,
        "num_models": settings.num_models,
        "model_kind": settings.model_kind,
        "model_latency": settings.model_latency,
    }


def planned_measurements(base: BenchSettings) -> int:
    return sum(repetitions(base, c) * len(measured(base, c)) for c in studies(base))


def repetitions(base: BenchSettings, config: Config) -> int:
    """How many times a configuration is measured: the waterfalls' steps are repeated."""
    return base.bench_attribution_repeats if config.study in WATERFALLS else 1


def measured(base: BenchSettings, config: Config) -> list[str]:
    """The architectures a configuration is measured for: its own, of those the run drives."""
    return [arch for arch in base.architectures if arch in config.architectures]


def attributed(base: BenchSettings) -> list[str]:
    """The architectures the gap's studies measure: sync and async (they attribute the gap between them)."""
    return [arch for arch in base.architectures if arch in REQUEST_RESPONSE]


def run_attribution(
    base: BenchSettings,
    run_dir: Path,
    tick: Callable[[], None] = lambda: None,
    on_error: Callable[[str, Exception], None] | None = None,
) -> Path:
    """Measure every configuration; rows are appended as they come, so an interrupted run keeps them."""
    out = run_dir / "attribution"
    out.mkdir(parents=True, exist_ok=True)
    path = out / "measurements.csv"
    configs = studies(base)
    (out / "plan.json").write_text(
        json.dumps(
            [
                {
                    "study": c.study,
                    "step": c.step,
                    "label": c.label,
                    "factor": c.factor,
                    "from": c.before,
                    "to": c.after,
                    "overrides": c.overrides,
                    "client": c.client,
                    "meta": c.meta,
                    "varies": sorted(c.varies),
                    "consequences": sorted(c.consequences),
                }
                for c in configs
            ],
            indent=1,
        )
    )
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS)
        writer.writeheader()
        for config in configs:
            try:
                for row in measure(base, config, run_dir, tick):
                    writer.writerow(row)
                    f.flush()
            except Exception as exc:
                if on_error is None:
                    raise
                on_error(f"attribution {config.study} {config.label}", exc)
    return path
