"""Every attribution study compares what it says it compares (issue 17 §4).

For each study benchmark/attribution.py plans (waterfall, fan-out, cpu, tail, the queue's waterfall with its
engine step, batching, servers), the stack settings of each configuration are built as the run builds them
(:func:`benchmark.attribution.config_settings`) and checked against the study's own declaration:

* a configuration changes no stack setting beyond ``Config.varies`` from the configuration before it in its
  study (the first: from the run's own stack);
* its two architectures differ in nothing beyond the architecture (differs.ARCHITECTURE_CONSEQUENCES) and
  ``Config.consequences``.

So a new default, or a study's code, that moves a setting on one side only fails here instead of silently
confounding a study.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from benchmark import attribution
from benchmark.analysis import differs
from benchmark.attribution import Config, config_settings, side_confounds, studies
from benchmark.settings import BenchSettings
from scoring_bench.core.settings import Settings

ALL_STUDIES = ["waterfall", "fanout", "cpu", "tail", "queue", "engine", "batching", "servers"]
PLANNED = {"waterfall", "fanout", "cpu", "tail", "queue", "batching", "servers"}  # engine: a queue step
ARCHITECTURES = ["sync", "async", "queue", "batched"]


def bench(**values: Any) -> BenchSettings:
    defaults = {"architectures": ARCHITECTURES, "bench_attribution_studies": ALL_STUDIES}
    return BenchSettings(bench_profile="quick", **{**defaults, **values})


def run_stack(base: BenchSettings, stack_dir: Path) -> Settings:
    """The run's own stack: the user's explicit settings and the defaults."""
    return Settings(**attribution._stack_values(base), stack_dir=stack_dir)


def undeclared(base: BenchSettings, configs: list[Config], stack_dir: Path) -> list[str]:
    """Every difference the configurations do not declare, one line each (empty: the studies are fair)."""
    problems = []
    previous: dict[str, Settings] = {}
    for config in configs:
        name = f"{config.study} step {config.step} ({config.label})"
        settings = config_settings(base, config, stack_dir)
        before = previous.get(config.study, run_stack(base, stack_dir))
        moved = sorted(set(differs.changed_settings(before, settings)) - config.varies)
        if moved:
            problems.append(f"{name} changes {moved}, not in its varies {sorted(config.varies)}")
        confounds = side_confounds(settings, config)
        if confounds:
            problems.append(f"{name}: {' vs '.join(config.architectures)} {differs.describe(confounds)}")
        previous[config.study] = settings
    return problems


def by_study(configs: list[Config]) -> dict[str, list[Config]]:
    grouped: dict[str, list[Config]] = {}
    for config in configs:
        grouped.setdefault(config.study, []).append(config)
    return grouped


def test_every_study_is_planned_the_queue_with_its_engine_step() -> None:
    grouped = by_study(studies(bench()))
    assert set(grouped) == PLANNED
    assert grouped["queue"][-1].factor == attribution.ENGINE_FACTOR
    assert all(len(configs) >= 1 for configs in grouped.values())


@pytest.mark.parametrize("study", sorted(PLANNED))
def test_a_study_differs_only_in_its_factor_and_its_declared_consequences(study: str, tmp_path: Path) -> None:
    base = bench()
    configs = by_study(studies(base))[study]
    assert undeclared(base, configs, tmp_path) == []


def test_each_configuration_moves_its_factor(tmp_path: Path) -> None:
    """A declaration is no blanket: every step moves a setting it declares (the queue's client step moves
    the client instead, which is not a stack setting)."""
    base = bench()
    previous: dict[str, Any] = {}
    for config in studies(base):
        settings = config_settings(base, config, tmp_path)
        before = previous.get(config.study)
        previous[config.study] = (settings, config.client)
        if before is None or config.study not in ("waterfall", "queue", "fanout", "cpu", "batching"):
            continue
        moved = differs.changed_settings(before[0], settings)
        assert moved or config.client != before[1], f"{config.study} step {config.step} moves nothing"
        assert set(moved) <= config.varies


def cpu_rows(base: BenchSettings, stack_dir: Path) -> list[Settings]:
    return [config_settings(base, c, stack_dir) for c in studies(base) if c.study == attribution.CPU_STUDY]


def test_the_cpu_study_holds_model_then_scoring_processes_equal(tmp_path: Path) -> None:
    first, second = cpu_rows(bench(), tmp_path)
    defaults = Settings()
    count = max(defaults.model_sync_workers, defaults.model_async_workers)
    assert first.model_kind == second.model_kind == "cpu"
    assert first.model_sync_workers == first.model_async_workers == count
    scoring = max(defaults.scoring_sync_workers, defaults.scoring_async_workers)
    assert second.scoring_sync_workers == second.scoring_async_workers == scoring
    assert (first.scoring_sync_workers, first.scoring_async_workers) == (
        defaults.scoring_sync_workers,
        defaults.scoring_async_workers,
    )
    sides = differs.compare_sides(second, "sync", second, "async")
    assert differs.confounds(sides, differs.ARCHITECTURE_CONSEQUENCES) == []  # row 2: nothing but the arch


def test_the_cpu_study_follows_the_users_explicit_count(tmp_path: Path) -> None:
    first, second = cpu_rows(bench(model_async_workers=3, scoring_sync_workers=1), tmp_path)
    assert first.model_sync_workers == first.model_async_workers == 3
    assert second.scoring_sync_workers == second.scoring_async_workers == 1


def test_the_users_unequal_counts_are_kept_and_flagged(tmp_path: Path) -> None:
    """Both counts set by the user: the study keeps them, and the check (the report too) names the
    difference."""
    base = bench(model_sync_workers=2, model_async_workers=1)
    first, _ = cpu_rows(base, tmp_path)
    assert (first.model_sync_workers, first.model_async_workers) == (2, 1)
    problems = undeclared(base, by_study(studies(base))["cpu"], tmp_path)
    assert any("model API processes 2 vs 1" in problem for problem in problems)


# --------------------------------------------------------------------------- the check catches confounds


def test_the_previous_cpu_study_is_caught_as_confounded(tmp_path: Path) -> None:
    """The cpu study as it was (model kind alone, the defaults' 2 against 1 model API processes)."""
    base = bench()
    old = Config("cpu", 0, "cpu-bound model", {"model_kind": "cpu"}, varies=frozenset({"model_kind"}))
    problems = undeclared(base, [old], tmp_path)
    assert (
        problems and "model API processes 2 vs 1" in problems[0] and "scoring processes 2 vs 1" in problems[0]
    )


@pytest.mark.parametrize(
    "break_it",
    [
        # a fan-out step that also moves the sync model API's processes
        lambda c: c.overrides.update({"model_sync_workers": 3}) if c.study == "fanout" and c.step else None,
        # a tail that moves its scoring server on one side
        lambda c: c.overrides.update({"scoring_async_server": "granian"}) if c.study == "tail" else None,
        # a waterfall step that switches more than its factor
        lambda c: c.overrides.update({"num_models": 4}) if c.study == "waterfall" and c.step == 2 else None,
    ],
    ids=["fanout-model-processes", "tail-server", "waterfall-extra-setting"],
)
def test_a_setting_moved_beyond_the_declaration_fails(
    break_it: Callable[[Config], None], tmp_path: Path
) -> None:
    base = bench()
    configs = studies(base)
    assert undeclared(base, configs, tmp_path) == []
    for config in configs:
        break_it(config)
    assert undeclared(base, configs, tmp_path) != []


def test_a_new_default_on_one_side_fails(tmp_path: Path) -> None:
    """The batching handler on two processes while async stays on one: every batching point is flagged."""
    base = bench(scoring_batched_workers=2)
    configs = by_study(studies(base))["batching"]
    problems = undeclared(base, configs, tmp_path)
    assert len(problems) == len(configs)
    assert all("scoring processes" in problem for problem in problems)


def test_the_cpu_study_without_its_equal_counts_fails(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(attribution, "equal_counts", lambda explicit, names: {})
    base = bench()
    problems = undeclared(base, by_study(studies(base))["cpu"], tmp_path)
    assert any("model API processes 2 vs 1" in problem for problem in problems)


def test_plan_json_records_the_declarations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The report reads what a configuration declares from attribution/plan.json."""
    base = bench(bench_attribution_studies=["cpu"], architectures=["sync", "async"])
    monkeypatch.setattr(attribution, "measure", lambda *args, **kwargs: [])
    attribution.run_attribution(base, tmp_path)
    plan = json.loads((tmp_path / "attribution" / "plan.json").read_text())
    assert [entry["consequences"] for entry in plan] == [[differs.SCORING_PROCESSES], []]
    assert "model_async_workers" in plan[0]["varies"] and "scoring_async_workers" in plan[1]["varies"]


def test_a_users_explicit_setting_stays_in_every_waterfall_step(tmp_path: Path) -> None:
    base = bench(scoring_sync_workers=3)
    waterfall = by_study(studies(base))["waterfall"]
    assert {config_settings(base, c, tmp_path).scoring_sync_workers for c in waterfall} == {3}
    assert undeclared(base, waterfall, tmp_path) == []
