"""What differs under every comparison of the attribution experiment, from the settings each side recorded
(``attribution/<study>/<step>/config.json``), and whether a study's sides differ in more than its factor.

Each study compares two sides: a configuration against the one before it in its study, same architecture
(a waterfall step, a fan-out against the previous number of models: the factor is the settings the
configuration declares it varies, plan.json's ``varies``, else those its overrides switch), sync against
async in one configuration (the gap at each step, fan-out, cpu, tail: the factor is the architecture, its
consequences :data:`ARCHITECTURE_CONSEQUENCES` and what the configuration declares, plan.json's
``consequences``), batched against async on each batching point, and each servers configuration against
its reference. A difference the factor does not explain is a confound: the report flags it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmark.analysis.differs import (
    ARCHITECTURE_CONSEQUENCES,
    QUEUE_CLIENT,
    comparison_differs,
    factor_labels,
    overridden,
)
from benchmark.analysis.raw import ATTRIBUTION, read_json, recorded_settings, settings_from
from benchmark.analysis.servers import REFERENCES, server_overrides
from benchmark.summary import (
    Attribution,
    BatchingSweep,
    Differs,
    GapAt,
    QueueWaterfall,
    ServerFramework,
    StudyEntry,
    WaterfallStep,
)
from scoring_bench.core.settings import Settings

SYNC = "sync"


@dataclass(frozen=True)
class Planned:
    """A configuration as plan.json has it: its overrides and what it declares it compares (None: a plan
    written before the declarations)."""

    overrides: dict[str, Any]
    varies: frozenset[str] | None = None
    consequences: frozenset[str] | None = None


@dataclass(frozen=True)
class StepConfig:
    """A study configuration as it ran: its stack settings, the overrides that made them (None: unknown),
    for the queue's waterfall how its client waited, and its declarations (:class:`Planned`)."""

    settings: Settings
    overrides: dict[str, Any] | None
    client: str = ""
    varies: frozenset[str] | None = None
    consequences: frozenset[str] | None = None

    def across(self) -> frozenset[str]:
        """What its architectures' sides may differ in: the architecture's consequences, its own."""
        return ARCHITECTURE_CONSEQUENCES | (self.consequences or frozenset())

    def extra(self) -> dict[str, str]:
        """The labels of its side that are not stack settings."""
        return {QUEUE_CLIENT: self.client} if self.client else {}


Configs = Callable[[str, int], StepConfig | None]


def step_configs(
    run_dir: Path, recorded: Settings | None, plan: Mapping[tuple[str, int], Planned]
) -> Configs:
    """A lookup of (study, step) → :class:`StepConfig`: its config.json, else the run's recorded settings
    with the plan's overrides (not when they choose a preset: its fill-ins are not in the recording)."""
    cache: dict[tuple[str, int], StepConfig | None] = {}

    def lookup(study: str, step: int) -> StepConfig | None:
        key = (study, step)
        if key not in cache:
            cache[key] = _read(run_dir, study, step, recorded, plan.get(key))
        return cache[key]

    return lookup


def _read(
    run_dir: Path, study: str, step: int, recorded: Settings | None, planned: Planned | None
) -> StepConfig | None:
    varies = planned.varies if planned else None
    consequences = planned.consequences if planned else None
    config = read_json(Path(run_dir) / ATTRIBUTION / study / str(step) / "config.json")
    if isinstance(config, dict) and isinstance(config.get("settings"), dict):
        settings = recorded_settings({"settings": config["settings"]})
        if settings is None:
            return None
        overrides = config.get("overrides")
        client = config.get("client")
        return StepConfig(
            settings,
            overrides if isinstance(overrides, dict) else (planned.overrides if planned else None),
            client if isinstance(client, str) else "",
            varies,
            consequences,
        )
    if recorded is None or planned is None or "scoring_preset" in planned.overrides:
        return None
    settings = settings_from({**recorded.model_dump(), **planned.overrides})
    if settings is None:
        return None
    return StepConfig(settings, planned.overrides, varies=varies, consequences=consequences)


def with_differs(attribution: Attribution, configs: Configs, servers_steps: Mapping[str, int]) -> Attribution:
    """``attribution`` with the ``differs`` of every comparison it makes."""
    tuned_step = _tuned_step(attribution)
    update: dict[str, Any] = {
        "steps": [_step_differs(step, "waterfall", configs, step.step - 1) for step in attribution.steps],
        "fanout": _fanout_differs(attribution.fanout, configs),
        "cpu": _by_arch_differs(attribution.cpu, "cpu", configs),
        "tail": _by_arch_differs(attribution.tail, "tail", configs),
        "cpu_configs": _entries_vs_sync(attribution.cpu_configs or [], "cpu", configs) or None,
    }
    if attribution.gap is not None:
        gap = attribution.gap
        update["gap"] = gap.model_copy(
            update={
                "seed_faithful": _gap_differs(gap.seed_faithful, configs, 0),
                "tuned": _gap_differs(gap.tuned, configs, tuned_step),
                "factors": [
                    factor.model_copy(update={"differs": gap_step_differs(configs, "waterfall", factor.step)})
                    for factor in gap.factors
                ],
            }
        )
    if attribution.queue is not None:
        update["queue"] = _queue_differs(attribution.queue, configs)
    if attribution.batching is not None:
        update["batching"] = _batching_differs(attribution.batching, configs)
    if attribution.servers is not None:
        update["servers"] = _servers_differs(attribution.servers, configs, servers_steps)
    return attribution.model_copy(update=update)


def gap_step_differs(configs: Configs, study: str, step: int) -> Differs | None:
    """sync against async in one configuration: the factor is the architecture."""
    config = configs(study, step)
    if config is None:
        return None
    return comparison_differs(config.settings, SYNC, config.settings, "async", allowed=config.across())


def step_differs(
    configs: Configs, study: str, before: int, after: int, arch: str, factor: str
) -> Differs | None:
    """One configuration of ``study`` against another, same architecture: the factor is what the
    overrides switch between them (not judged when the overrides are unknown)."""
    first, second = configs(study, before), configs(study, after)
    if first is None or second is None:
        return None
    allowed: set[str] | None = None
    names = second.varies
    if names is None and first.overrides is not None and second.overrides is not None:
        names = frozenset(overridden(first.overrides, second.overrides))
    if names is not None:
        allowed = factor_labels(first.settings, second.settings, names, arch)
        if first.client != second.client:
            allowed.add(QUEUE_CLIENT)
    return comparison_differs(
        first.settings,
        arch,
        second.settings,
        arch,
        sides=(f"{arch} at step {before}", f"{arch} at step {after}"),
        factor=factor,
        allowed=allowed,
        extra=(first.extra(), second.extra()),
    )


def _tuned_step(attribution: Attribution) -> int:
    tuned = attribution.tuned or {}
    return next(iter(tuned.values())).step if tuned else max((s.step for s in attribution.steps), default=0)


def _step_differs(step: WaterfallStep, study: str, configs: Configs, before: int) -> WaterfallStep:
    differs = step_differs(configs, study, before, step.step, step.architecture, step.factor)
    return step.model_copy(update={"differs": differs})


def _gap_differs(gap: GapAt | None, configs: Configs, step: int) -> GapAt | None:
    if gap is None:
        return None
    return gap.model_copy(update={"differs": gap_step_differs(configs, "waterfall", step)})


def _vs_sync(entry: StudyEntry, study: str, configs: Configs) -> Differs | None:
    if entry.architecture == SYNC:
        return None
    config = configs(study, entry.step)
    if config is None:
        return None
    return comparison_differs(
        config.settings, SYNC, config.settings, entry.architecture, allowed=config.across()
    )


def _entries_vs_sync(entries: list[StudyEntry], study: str, configs: Configs) -> list[StudyEntry]:
    return [entry.model_copy(update={"differs": _vs_sync(entry, study, configs)}) for entry in entries]


def _by_arch_differs(
    entries: dict[str, StudyEntry] | None, study: str, configs: Configs
) -> dict[str, StudyEntry] | None:
    if entries is None:
        return None
    return {
        arch: entry.model_copy(update={"differs": _vs_sync(entry, study, configs)})
        for arch, entry in entries.items()
    }


def _fanout_differs(entries: list[StudyEntry], configs: Configs) -> list[StudyEntry]:
    """Each fan-out against sync at its number of models, and against its previous number of models."""
    previous: dict[str, int] = {}
    result = []
    for entry in entries:  # sorted by number of models
        before = previous.get(entry.architecture)
        differs_previous = (
            step_differs(configs, "fanout", before, entry.step, entry.architecture, "models per request")
            if before is not None
            else None
        )
        previous[entry.architecture] = entry.step
        result.append(
            entry.model_copy(
                update={"differs": _vs_sync(entry, "fanout", configs), "differs_previous": differs_previous}
            )
        )
    return result


def _queue_differs(queue: QueueWaterfall, configs: Configs) -> QueueWaterfall:
    """Each step of the queue's waterfall against the one before; the engine's against the tuned queue."""
    tuned = queue.tuned.step if queue.tuned else max((s.step for s in queue.steps), default=0)
    engine = queue.engine
    return queue.model_copy(
        update={
            "steps": [_step_differs(step, "queue", configs, step.step - 1) for step in queue.steps],
            "engine": _step_differs(engine, "queue", configs, tuned) if engine is not None else None,
        }
    )


def _batching_differs(sweep: BatchingSweep, configs: Configs) -> BatchingSweep:
    """batched against async on each point's stack: the factor is the architecture (batching)."""

    def point_differs(step: int) -> Differs | None:
        config = configs("batching", step)
        if config is None:
            return None
        return comparison_differs(
            config.settings, "batched", config.settings, "async", allowed=config.across()
        )

    return sweep.model_copy(
        update={
            "grid": [p.model_copy(update={"differs": point_differs(p.step)}) for p in sweep.grid],
            "per_item": [p.model_copy(update={"differs": point_differs(p.step)}) for p in sweep.per_item],
        }
    )


def _servers_differs(servers: ServerFramework, configs: Configs, steps: Mapping[str, int]) -> ServerFramework:
    """Each configuration against its reference (benchmark/analysis/servers.py :data:`REFERENCES`)."""
    levels = []
    for level in servers.servers:
        reference = REFERENCES.get(level.label)
        differs = None
        if reference is not None and level.label in steps and reference.label in steps:
            differs = _server_differs(
                configs("servers", steps[reference.label]),
                reference.architecture,
                reference.label,
                configs("servers", steps[level.label]),
                level.architecture,
                level.label,
                overridden(server_overrides(reference.label), server_overrides(level.label)),
            )
        levels.append(level.model_copy(update={"differs": differs}))
    return servers.model_copy(update={"servers": levels})


def _server_differs(
    first: StepConfig | None,
    arch_a: str,
    label_a: str,
    second: StepConfig | None,
    arch_b: str,
    label_b: str,
    names: Collection[str],
) -> Differs | None:
    if first is None or second is None:
        return None
    if arch_a != arch_b:
        allowed: set[str] | frozenset[str] = first.across() & second.across()
        factor = "architecture"
    else:
        allowed, factor = factor_labels(first.settings, second.settings, names, arch_a), "server"
    return comparison_differs(
        first.settings,
        arch_a,
        second.settings,
        arch_b,
        sides=(label_a, label_b),
        factor=factor,
        allowed=allowed,
    )
