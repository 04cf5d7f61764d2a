"""The attribution experiment (``attribution/``): the waterfall from seed-faithful to tuned, the sync–async
gap and each factor's share of its change, the fan-out, cpu and tail studies beside their ideals, and the
queue's own waterfall with each factor's share of its gap to the ideal."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmark.analysis.batching import batching_section
from benchmark.analysis.measurements import Measurement, level
from benchmark.analysis.phases import concurrent_calls, difference
from benchmark.analysis.raw import (
    ATTRIBUTION,
    as_float,
    csv_rows,
    integer,
    number,
    read_environment_data,
    read_json,
    recorded_settings,
    settings_from,
)
from benchmark.analysis.servers import first_steps, servers_section
from benchmark.analysis.study_differs import Planned, step_configs, with_differs
from benchmark.ideal import ideal_latency_ms
from benchmark.summary import (
    Attribution,
    Factor,
    Gap,
    GapAt,
    GapFactor,
    Level,
    QueueFactor,
    QueueWaterfall,
    Spread,
    Spreads,
    StudyEntry,
    WaterfallStep,
    WithinNoise,
)
from scoring_bench.core.settings import Settings

WATERFALL = "waterfall"
QUEUE_STUDY = "queue"  # the queue's waterfall (benchmark/attribution.py)
ENGINE_FACTOR = "engine"  # its step beyond tuned: taskiq instead of Celery (benchmark/attribution.py)
BATCHING_STUDY = "batching"  # batching's cost and gain (benchmark/analysis/batching.py)
GAP_EPSILON = 1e-6  # a change of the gap (ms or req/s) smaller than this is no change: no shares


# --------------------------------------------------------------------------- raw files


@dataclass(frozen=True)
class PlanEntry:
    """One configuration of ``attribution/plan.json``."""

    label: str
    factor: str
    before: str
    after: str
    overrides: dict[str, Any]
    # what the configuration declares it compares (plan.json; None: a plan from before the declarations)
    varies: frozenset[str] | None = None  # the settings it may change from the configuration before it
    consequences: frozenset[str] | None = None  # labels its architectures' sides may differ in, beyond


Plan = dict[tuple[str, int], PlanEntry]  # by (study, step)


def attribution_dir(run_dir: Path) -> Path:
    return Path(run_dir) / ATTRIBUTION


def read_measurements(run_dir: Path) -> list[Measurement]:
    """The rows of ``attribution/measurements.csv`` (rows without a study, step or architecture skipped)."""
    rows: list[Measurement] = []
    for row in csv_rows(attribution_dir(run_dir) / "measurements.csv"):
        step, rep = number(row.get("step")), number(row.get("rep"))
        study, arch = (row.get("study") or "").strip(), (row.get("arch") or "").strip()
        if step is None or not study or not arch:
            continue
        rows.append(
            Measurement(
                study=study,
                step=int(step),
                label=row.get("label") or "",
                factor=row.get("factor") or "",
                before=row.get("from") or "",
                after=row.get("to") or "",
                arch=arch,
                rep=int(rep or 0),
                p50_ms=number(row.get("p50_ms")),
                p95_ms=number(row.get("p95_ms")),
                p99_ms=number(row.get("p99_ms")),
                rps=number(row.get("rps")),
                failure_ratio=number(row.get("failure_ratio")),
                load_users=integer(row.get("load_users")),
                num_models=integer(row.get("num_models")),
                model_kind=row.get("model_kind") or "",
                model_latency=row.get("model_latency") or "",
                cpu_ms_per_request=number(row.get("cpu_ms_per_request")),
                polls_per_task=number(row.get("polls_per_task")),
            )
        )
    return rows


def read_plan(run_dir: Path) -> Plan:
    """``attribution/plan.json`` by (study, step); empty when it is missing or unreadable."""
    data = read_json(attribution_dir(run_dir) / "plan.json")
    plan: Plan = {}
    for entry in data if isinstance(data, list) else []:
        step = as_float(entry.get("step")) if isinstance(entry, dict) else None
        if step is not None and isinstance(entry.get("study"), str):
            overrides = entry.get("overrides")
            plan[(entry["study"], int(step))] = PlanEntry(
                label=_text(entry.get("label")),
                factor=_text(entry.get("factor")),
                before=_text(entry.get("from")),
                after=_text(entry.get("to")),
                overrides=overrides if isinstance(overrides, dict) else {},
                varies=_names(entry.get("varies")),
                consequences=_names(entry.get("consequences")),
            )
    return plan


def _names(value: Any) -> frozenset[str] | None:
    return frozenset(str(name) for name in value) if isinstance(value, list) else None


def _text(value: Any) -> str:
    return str(value) if value else ""


def read_config_settings(run_dir: Path, study: str, step: int) -> Settings | None:
    """The settings in ``attribution/<study>/<step>/config.json``, or None."""
    config = read_json(attribution_dir(run_dir) / study / str(step) / "config.json")
    if isinstance(config, dict) and isinstance(config.get("settings"), dict):
        return recorded_settings({"settings": config["settings"]})
    return None


def study_settings(
    own: Settings | None, row: Measurement, recorded: Settings | None, plan_entry: PlanEntry | None
) -> Settings | None:
    """The stack settings a configuration ran with: its own (its ``config.json``) when present, else the
    run's recorded settings with the configuration's overrides (the measurement's columns, then
    plan.json's)."""
    if own is not None:
        return own
    if recorded is None:
        return None
    columns = {"num_models": row.num_models, "model_kind": row.model_kind, "model_latency": row.model_latency}
    known = {key: value for key, value in columns.items() if value not in (None, "")}
    overrides = plan_entry.overrides if plan_entry else {}
    return settings_from({**recorded.model_dump(), **known, **overrides})


# --------------------------------------------------------------------------- levels and the waterfall


def _group(rows: Iterable[Measurement], study: str) -> dict[int, dict[str, list[Measurement]]]:
    """A study's rows by step, then by architecture (in the order they were measured)."""
    groups: dict[int, dict[str, list[Measurement]]] = {}
    for row in rows:
        if row.study == study:
            groups.setdefault(row.step, {}).setdefault(row.arch, []).append(row)
    return dict(sorted(groups.items()))


def _within_noise(delta: float | None, *spreads: Spread | None) -> bool | None:
    """Whether a change is no larger than the wider min–max range (over repetitions) of the two steps."""
    ranges = [
        s.max - s.min
        for s in spreads
        if s is not None and s.n > 1 and s.max is not None and s.min is not None
    ]
    if delta is None or not ranges:
        return None
    return abs(delta) <= max(ranges)


def _waterfall_step(
    row: Measurement, now: Level, previous: Level | None, plan_entry: PlanEntry | None
) -> WaterfallStep:
    delta_p50 = difference(now.p50_ms, previous.p50_ms if previous else None)
    delta_rps = difference(now.max_rps, previous.max_rps if previous else None)
    before = previous.spread if previous else Spreads()
    return WaterfallStep(
        step=row.step,
        factor=(plan_entry.factor if plan_entry else "") or row.factor,
        from_=(plan_entry.before if plan_entry else "") or row.before,
        to=(plan_entry.after if plan_entry else "") or row.after,
        architecture=row.arch,
        p50_ms=now.p50_ms,
        delta_p50_ms=delta_p50,
        max_rps=now.max_rps,
        delta_rps=delta_rps,
        failure_ratio=now.failure_ratio,
        reps=now.reps,
        spread=now.spread,
        within_noise=WithinNoise(
            p50_ms=_within_noise(delta_p50, now.spread.p50_ms, before.p50_ms),
            max_rps=_within_noise(delta_rps, now.spread.max_rps, before.max_rps),
        ),
        cpu_ms_per_request=now.cpu_ms_per_request,
        polls_per_task=now.polls_per_task,
    )


def gap_at(levels: dict[str, Level] | None) -> GapAt | None:
    """The sync–async gap of one configuration: sync p50 − async p50; async req/s ÷ and − sync req/s."""
    if not levels or "sync" not in levels or "async" not in levels:
        return None
    sync_p50, async_p50 = levels["sync"].p50_ms, levels["async"].p50_ms
    sync_rps, async_rps = levels["sync"].max_rps, levels["async"].max_rps
    return GapAt(
        latency_gap_ms=difference(sync_p50, async_p50),
        throughput_ratio=async_rps / sync_rps if sync_rps and async_rps is not None else None,
        throughput_difference_rps=difference(async_rps, sync_rps),
        sync_p50_ms=sync_p50,
        async_p50_ms=async_p50,
        sync_rps=sync_rps,
        async_rps=async_rps,
    )


def _share(part: float | None, total: float | None) -> float | None:
    """``part / total``; None when the total is ~0 (a share of nothing means nothing)."""
    if part is None or total is None or abs(total) < GAP_EPSILON:
        return None
    return part / total + 0.0  # + 0.0: no -0.0


def gap_section(
    levels: dict[int, dict[str, Level]], first: int, last: int, factors: dict[int, Factor]
) -> Gap | None:
    """The gap at seed-faithful (``first``) and tuned (``last``), and how much each factor moved it."""
    gaps = {step: gap_at(by_arch) for step, by_arch in levels.items()}
    if gaps.get(first) is None and gaps.get(last) is None:
        return None

    def latency(step: int) -> float | None:
        gap = gaps.get(step)
        return gap.latency_gap_ms if gap else None

    def throughput(step: int) -> float | None:
        gap = gaps.get(step)
        return gap.throughput_difference_rps if gap else None

    total_p50 = difference(latency(last), latency(first))
    total_rps = difference(throughput(last), throughput(first))
    rows = []
    for step, factor in factors.items():
        change_p50 = difference(latency(step), latency(step - 1))
        change_rps = difference(throughput(step), throughput(step - 1))
        rows.append(
            GapFactor(
                step=factor.step,
                factor=factor.factor,
                from_=factor.from_,
                to=factor.to,
                gap_change_p50_ms=change_p50,
                gap_change_rps=change_rps,
                share_p50=_share(change_p50, total_p50),
                share_rps=_share(change_rps, total_rps),
            )
        )
    return Gap(
        seed_faithful=gaps.get(first),
        tuned=gaps.get(last),
        total_change_p50_ms=total_p50,
        total_change_rps=total_rps,
        factors=rows,
    )


@dataclass(frozen=True)
class Waterfall:
    steps: list[WaterfallStep]
    baseline: dict[str, Level] | None
    tuned: dict[str, Level] | None
    gap: Gap | None


def waterfall_section(rows: Sequence[Measurement], plan: Plan) -> Waterfall:
    """Steps ≥ 1 per architecture (each against the step before), seed-faithful (step 0), tuned (the last
    planned step) and the gap between the architectures."""
    groups = _group(rows, WATERFALL)
    levels = {
        step: {arch: level(arch_rows) for arch, arch_rows in by_arch.items()}
        for step, by_arch in groups.items()
    }
    planned = [step for study, step in plan if study == WATERFALL]
    if not levels:
        return Waterfall([], None, None, None)
    first, last = 0, max(planned or levels)
    steps: list[WaterfallStep] = []
    factors: dict[int, Factor] = {}
    for step, by_arch in groups.items():
        if step == first:
            continue
        for arch, arch_rows in by_arch.items():
            previous = levels.get(step - 1, {}).get(arch)
            entry = _waterfall_step(arch_rows[0], levels[step][arch], previous, plan.get((WATERFALL, step)))
            steps.append(entry)
            factors.setdefault(
                step, Factor(step=entry.step, factor=entry.factor, from_=entry.from_, to=entry.to)
            )
    return Waterfall(steps, levels.get(first), levels.get(last), gap_section(levels, first, last, factors))


# --------------------------------------------------------------------------- the queue's waterfall


def _ideal_p50(
    run_dir: Path, rows: Sequence[Measurement], step: int, recorded: Settings | None, plan: Plan
) -> tuple[float | None, str | None]:
    """The ideal p50 (and how it is computed) of the queue's configuration at ``step``."""
    if not rows:
        return None, None
    own = read_config_settings(run_dir, QUEUE_STUDY, step)
    settings = study_settings(own, rows[0], recorded, plan.get((QUEUE_STUDY, step)))
    if settings is None:
        return None, None
    ideal = ideal_latency_ms(settings, concurrent_calls(settings, "queue"))
    return ideal.p50_ms, ideal.description


def queue_waterfall_section(
    run_dir: Path, rows: Sequence[Measurement], plan: Plan, recorded: Settings | None = None
) -> QueueWaterfall | None:
    """The queue's waterfall (study ``queue``): each step against the one before, the seed-faithful and
    tuned levels, and each factor's share of the gap between the seed-faithful p50 and the tuned queue's
    ideal p50 (the part it closed) and of the change of throughput; None when it did not run."""
    groups = {step: by_arch.get("queue", []) for step, by_arch in _group(rows, QUEUE_STUDY).items()}
    groups = {step: step_rows for step, step_rows in groups.items() if step_rows}
    if not groups:
        return None
    levels = {step: level(step_rows) for step, step_rows in groups.items()}
    engine_step = _engine_step(groups, plan)
    planned = [step for study, step in plan if study == QUEUE_STUDY and step != engine_step]
    first, last = 0, max(planned or [step for step in levels if step != engine_step] or [0])
    steps = [
        _waterfall_step(step_rows[0], levels[step], levels.get(step - 1), plan.get((QUEUE_STUDY, step)))
        for step, step_rows in groups.items()
        if step not in (first, engine_step)
    ]
    engine = (
        _waterfall_step(
            groups[engine_step][0],
            levels[engine_step],
            levels.get(last),
            plan.get((QUEUE_STUDY, engine_step)),
        )
        if engine_step is not None and engine_step in groups
        else None
    )
    ideal, description = _ideal_p50(run_dir, groups.get(last, []), last, recorded, plan)
    seed_ideal, _ = _ideal_p50(run_dir, groups.get(first, []), first, recorded, plan)
    baseline, tuned = levels.get(first), levels.get(last)
    gap_seed = difference(baseline.p50_ms if baseline else None, ideal)
    total_rps = difference(tuned.max_rps if tuned else None, baseline.max_rps if baseline else None)
    factors = [
        QueueFactor(
            step=step.step,
            factor=step.factor,
            from_=step.from_,
            to=step.to,
            change_p50_ms=step.delta_p50_ms,
            change_rps=step.delta_rps,
            # a factor that cut the p50 closed part of the gap: a positive share
            share_of_ideal_gap=_share(
                -step.delta_p50_ms if step.delta_p50_ms is not None else None, gap_seed
            ),
            share_rps=_share(step.delta_rps, total_rps),
        )
        for step in steps
    ]
    return QueueWaterfall(
        steps=steps,
        baseline=baseline,
        tuned=tuned,
        ideal_p50_ms=ideal,
        ideal_description=description,
        seed_ideal_p50_ms=seed_ideal,
        ideal_gap_seed_ms=gap_seed,
        ideal_gap_tuned_ms=difference(tuned.p50_ms if tuned else None, ideal),
        total_change_rps=total_rps,
        factors=factors,
        engine=engine,
    )


def _engine_step(groups: dict[int, list[Measurement]], plan: Plan) -> int | None:
    """The queue waterfall's engine step (taskiq instead of Celery, after the tuned step), if planned or
    measured."""
    planned = [
        step
        for (study, step), entry in plan.items()
        if study == QUEUE_STUDY and entry.factor == ENGINE_FACTOR
    ]
    measured = [step for step, rows in groups.items() if rows and rows[0].factor == ENGINE_FACTOR]
    steps = planned or measured
    return max(steps) if steps else None


# --------------------------------------------------------------------------- fan-out, cpu and tail


def study_entry(rows: Sequence[Measurement], settings: Settings | None) -> StudyEntry:
    """One configuration of the fan-out, cpu or tail study for one architecture, beside its ideal."""
    first = rows[0]
    measured = level(rows)
    concurrent = concurrent_calls(settings, first.arch)
    ideal = ideal_latency_ms(settings, concurrent) if settings else None
    return StudyEntry(
        step=first.step,
        label=first.label,
        architecture=first.arch,
        num_models=settings.num_models if settings else first.num_models,
        model_kind=settings.model_kind if settings else first.model_kind,
        model_latency=settings.model_latency if settings else first.model_latency,
        concurrent=concurrent,
        reps=measured.reps,
        p50_ms=measured.p50_ms,
        p95_ms=measured.p95_ms,
        p99_ms=measured.p99_ms,
        rps=measured.max_rps,
        failure_ratio=measured.failure_ratio,
        ideal_mean_ms=ideal.mean_ms if ideal else None,
        ideal_p50_ms=ideal.p50_ms if ideal else None,
        ideal_p95_ms=ideal.p95_ms if ideal else None,
        ideal_p99_ms=ideal.p99_ms if ideal else None,
        ideal_description=ideal.description if ideal else None,
    )


def _study_entries(
    run_dir: Path, rows: Sequence[Measurement], study: str, recorded: Settings | None, plan: Plan
) -> list[StudyEntry]:
    entries = []
    for step, by_arch in _group(rows, study).items():
        for arch_rows in by_arch.values():
            own = read_config_settings(run_dir, study, step)
            settings = study_settings(own, arch_rows[0], recorded, plan.get((study, step)))
            entries.append(study_entry(arch_rows, settings))
    return entries


def _by_architecture(entries: list[StudyEntry]) -> dict[str, StudyEntry] | None:
    """The first configuration of a one-configuration study (cpu, tail), by architecture."""
    if not entries:
        return None
    first_step = entries[0].step
    return {entry.architecture: entry for entry in entries if entry.step == first_step}


def _missing(rows: Sequence[Measurement], plan: Plan) -> list[str]:
    measured = {(row.study, row.step) for row in rows}
    return [
        f"{study}: {entry.label or step}"
        for (study, step), entry in plan.items()
        if (study, step) not in measured
    ]


def attribution_section(run_dir: Path, settings: Settings | None = None) -> Attribution | None:
    """The attribution experiment from ``attribution/measurements.csv`` (None when there is none).

    ``settings``: the run's recorded stack settings (default: read from environment.json); they give the
    ideal latency of a configuration whose own ``config.json`` is missing.
    """
    rows = read_measurements(run_dir)
    if not rows:
        return None
    if settings is None:
        settings = recorded_settings(read_environment_data(run_dir))
    plan = read_plan(run_dir)
    fanout = _study_entries(run_dir, rows, "fanout", settings, plan)
    gap_rows = [row for row in rows if row.study not in (QUEUE_STUDY, BATCHING_STUDY)]
    order = {arch: i for i, arch in enumerate(dict.fromkeys(row.arch for row in gap_rows))}
    users = [row.load_users for row in rows if row.load_users is not None]
    waterfall = waterfall_section(rows, plan)
    cpu = _study_entries(run_dir, rows, "cpu", settings, plan)
    attribution = Attribution(
        architectures=list(order),
        load_users=max(users) if users else None,
        missing=_missing(rows, plan),
        steps=waterfall.steps,
        baseline=waterfall.baseline,
        tuned=waterfall.tuned,
        gap=waterfall.gap,
        fanout=sorted(fanout, key=lambda e: (e.num_models or 0, order[e.architecture])),
        cpu=_by_architecture(cpu),
        cpu_configs=cpu or None,
        tail=_by_architecture(_study_entries(run_dir, rows, "tail", settings, plan)),
        queue=queue_waterfall_section(run_dir, rows, plan, settings),
        servers=servers_section(rows),
        batching=batching_section(run_dir, rows, settings),
    )
    planned = {key: Planned(entry.overrides, entry.varies, entry.consequences) for key, entry in plan.items()}
    return with_differs(attribution, step_configs(run_dir, settings, planned), first_steps(rows))
