"""The queue's waterfall: its factors and presets, the analysis of its measurements, its report and plot
(synthetic measurements, as the experiment writes them)."""

from __future__ import annotations

import csv
import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from benchmark.analysis.attribution import attribution_section
from benchmark.attribution import (
    COLUMNS,
    LONG_POLL,
    PLAIN_POLLING,
    QUEUE_FACTORS,
    QUEUE_STUDY,
    config_settings,
    planned_measurements,
    queue_waterfall,
    studies,
    tuned_values,
    waterfall,
)
from benchmark.ideal import ideal_latency_ms
from benchmark.report.attribution import attribution_blocks
from benchmark.report.attribution_queue import queue_sentences
from benchmark.report.blocks import render_markdown
from benchmark.report.plots_attribution import plot_queue_waterfall
from benchmark.settings import BenchSettings
from benchmark.summary import Level, QueueFactor, QueueWaterfall, Summary, WaterfallStep
from scoring_bench.core.presets import PRESETS, SEED_HANDLERS, SEED_QUEUE
from scoring_bench.core.settings import Settings

REPS = 2
USERS = 64
P50_OFFSETS, RPS_OFFSETS = (-1.0, 1.0), (-2.0, 2.0)


def _bench(**values: Any) -> BenchSettings:
    defaults: dict[str, Any] = {
        "bench_profile": "smoke",
        "architectures": ["queue"],
        "bench_attribution_repeats": REPS,
        "bench_attribution_studies": ["queue"],
    }
    return BenchSettings(**{**defaults, **values})


# --------------------------------------------------------------------------- factors and presets


def test_seed_faithful_preset_holds_the_handlers_and_the_queue_choices() -> None:
    assert PRESETS["seed-faithful"] == {**SEED_HANDLERS, **SEED_QUEUE}
    seed = Settings(scoring_preset="seed-faithful")
    assert (seed.queue_worker_pool, seed.queue_wakeup, seed.queue_track_started) == ("prefork", "poll", False)
    assert seed.concurrent_model_calls("queue") is False
    assert Settings().concurrent_model_calls("queue") is True
    # the sync–async waterfall switches the handlers' choices only, and still ends at their tuned values
    last = waterfall(_bench(architectures=["sync", "async"]))[-1]
    tuned = tuned_values(list(SEED_HANDLERS))
    assert {name: last.overrides[name] for name in SEED_HANDLERS} == tuned


def test_queue_waterfall_switches_one_factor_at_a_time_from_the_seed_to_tuned() -> None:
    configs = queue_waterfall(_bench())
    assert [c.step for c in configs] == list(range(len(configs)))
    assert all(c.study == QUEUE_STUDY and c.architectures == ("queue",) for c in configs)
    first, last = configs[0], configs[-1]
    assert first.overrides == SEED_QUEUE and first.client == PLAIN_POLLING
    assert last.overrides == tuned_values(list(SEED_QUEUE)) and last.client == LONG_POLL
    assert configs[1].factor.startswith("client") and configs[1].overrides == SEED_QUEUE
    assert (configs[1].before, configs[1].after) == (PLAIN_POLLING, LONG_POLL)
    by_name = {factor.name: factor for factor in QUEUE_FACTORS}
    for previous, config in itertools.pairwise(configs[1:]):
        changed = {k for k in config.overrides if config.overrides[k] != previous.overrides[k]}
        assert changed and changed <= set(by_name[config.factor].changes)
        assert config.before != config.after
    # a factor whose seed value is the tuned one is no step (the serializer: JSON both)
    stepped = {c.factor for c in configs}
    for factor in QUEUE_FACTORS[1:]:
        tuned = tuned_values(list(factor.changes))
        same = all(tuned[name] == SEED_QUEUE[name] for name in factor.changes)
        assert (factor.name in stepped) is not same
    settings = config_settings(_bench(), first, Path(".stack"))
    assert (settings.queue_worker_pool, settings.scoring_preset) == ("prefork", "tuned")  # handlers tuned


def test_a_setting_the_user_set_stays_in_every_step() -> None:
    configs = queue_waterfall(_bench(queue_worker_concurrency=8))
    assert all("queue_worker_concurrency" not in c.overrides for c in configs)
    pool = next(c for c in configs if c.factor == "worker pool")
    assert (pool.before, pool.after) == ("prefork ×8", "threads ×8")


def test_which_studies_run_follows_the_architectures() -> None:
    only_queue = studies(_bench())
    assert {c.study for c in only_queue} == {QUEUE_STUDY}
    assert planned_measurements(_bench()) == REPS * len(only_queue)
    both = _bench(architectures=["sync", "async", "queue"], bench_attribution_studies=["waterfall", "queue"])
    kinds = [c.study for c in studies(both)]
    assert set(kinds) == {"waterfall", QUEUE_STUDY}
    waterfall_steps = kinds.count("waterfall")
    assert planned_measurements(both) == REPS * (2 * waterfall_steps + len(only_queue))
    assert studies(_bench(architectures=["sync", "async"])) == []  # the queue's only: nothing to measure


# --------------------------------------------------------------------------- analysis


def write_queue_run(run_dir: Path, p50s: list[float], rates: list[float]) -> list[str]:
    """measurements.csv and plan.json of a queue waterfall with these means per step; the factors' names."""
    configs = queue_waterfall(_bench())
    assert len(configs) == len(p50s) == len(rates)
    folder = run_dir / "attribution"
    folder.mkdir(parents=True)
    plan = [
        {
            "study": c.study,
            "step": c.step,
            "label": c.label,
            "factor": c.factor,
            "from": c.before,
            "to": c.after,
            "overrides": c.overrides,
            "client": c.client,
        }
        for c in configs
    ]
    (folder / "plan.json").write_text(json.dumps(plan))
    with open(folder / "measurements.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, COLUMNS)
        writer.writeheader()
        for config, p50, rate in zip(configs, p50s, rates):
            for rep in range(REPS):
                writer.writerow(
                    {
                        "study": config.study,
                        "step": config.step,
                        "label": config.label,
                        "factor": config.factor,
                        "from": config.before,
                        "to": config.after,
                        "arch": "queue",
                        "rep": rep,
                        "p50_ms": p50 + P50_OFFSETS[rep],
                        "p95_ms": p50 * 1.1,
                        "p99_ms": p50 * 1.2,
                        "rps": rate + RPS_OFFSETS[rep],
                        "failure_ratio": 0.0,
                        "load_users": USERS,
                        "num_models": 2,
                        "model_kind": "io",
                        "model_latency": "uniform",
                        "cpu_ms_per_request": 5.0 + config.step + rep,
                        "polls_per_task": 100.0 if config.client == PLAIN_POLLING else 2.0,
                    }
                )
    return [c.factor for c in configs[1:]]


@pytest.fixture()
def steps_count() -> int:
    return len(queue_waterfall(_bench()))


def _means(steps: int) -> tuple[list[float], list[float]]:
    """p50 means: plain polling 140, long poll worse (+10), notification better (-30), the next step
    -2, then the model calls the biggest cut; tasks/s: the worker pool's step the biggest rise."""
    pool = next(c.step for c in queue_waterfall(_bench()) if c.factor == "worker pool")
    p50s = [140.0, 150.0, 120.0] + [118.0] * (steps - 4) + [60.0]
    rates = [20.0, 18.0] + [19.0] * (pool - 2) + [300.0] * (steps - pool - 1) + [500.0]
    return p50s, rates


def test_analysis_levels_deltas_ideal_and_shares(tmp_path: Path, steps_count: int) -> None:
    p50s, rates = _means(steps_count)
    names = write_queue_run(tmp_path, p50s, rates)
    attribution = attribution_section(tmp_path, Settings())
    assert attribution is not None and attribution.architectures == [] and attribution.steps == []
    queue = attribution.queue
    assert queue is not None and queue.baseline is not None and queue.tuned is not None
    assert queue.baseline.p50_ms == pytest.approx(p50s[0]) and queue.tuned.max_rps == pytest.approx(rates[-1])
    assert queue.baseline.spread.p50_ms is not None and queue.baseline.spread.p50_ms.n == REPS
    assert [s.factor for s in queue.steps] == names
    assert queue.baseline.cpu_ms_per_request == pytest.approx(5.5) and queue.baseline.polls_per_task == 100.0
    assert queue.steps[0].polls_per_task == 2.0 and queue.steps[0].cpu_ms_per_request == pytest.approx(6.5)
    for step in queue.steps:
        assert step.delta_p50_ms == pytest.approx(p50s[step.step] - p50s[step.step - 1])
        assert step.delta_rps == pytest.approx(rates[step.step] - rates[step.step - 1])
    ideal = ideal_latency_ms(Settings(), concurrent=True)  # the tuned queue's calls are concurrent
    seed_ideal = ideal_latency_ms(Settings(), concurrent=False)
    assert queue.ideal_p50_ms == pytest.approx(ideal.p50_ms)
    assert queue.seed_ideal_p50_ms == pytest.approx(seed_ideal.p50_ms)
    gap = p50s[0] - ideal.p50_ms
    assert queue.ideal_gap_seed_ms == pytest.approx(gap)
    assert queue.ideal_gap_tuned_ms == pytest.approx(p50s[-1] - ideal.p50_ms)
    shares = [f.share_of_ideal_gap or 0.0 for f in queue.factors]
    # what the factors closed and what is left make up the gap
    assert sum(shares) + (queue.ideal_gap_tuned_ms or 0.0) / gap == pytest.approx(1.0)
    assert queue.factors[0].share_of_ideal_gap == pytest.approx(-10.0 / gap)  # the long poll widened it
    assert sum(f.share_rps or 0.0 for f in queue.factors) == pytest.approx(1.0)
    # a step of 2 ms against a spread of 2 ms between repetitions is noise
    assert queue.steps[2].within_noise.p50_ms is True and queue.steps[1].within_noise.p50_ms is False


def test_report_names_the_factor_that_explains_most_of_the_gap(tmp_path: Path, steps_count: int) -> None:
    p50s, rates = _means(steps_count)
    write_queue_run(tmp_path, p50s, rates)
    attribution = attribution_section(tmp_path, Settings())
    assert attribution is not None and attribution.queue is not None
    text = " ".join(queue_sentences(attribution.queue, USERS))
    assert "Model calls (sequential → concurrent) explains most of the queue's gap to its ideal" in text
    assert "it cut the p50 at one user by 58.0 ms" in text
    assert "The seed-faithful queue took 140.0 ms at one user" in text
    assert "from 20.0 tasks/s to 500.0 tasks/s" in text and "worker pool (prefork ×2 → threads ×64)" in text
    summary = Summary(run_id="r", attribution=attribution, experiments=["attribution"])
    paths = {"queue_waterfall": tmp_path / "q.png"}
    markdown = render_markdown(attribution_blocks(summary, paths), tmp_path)
    assert "### The queue's waterfall: from the seeds' Celery to the tuned queue" in markdown
    assert "| client polling | plain polling → long poll |" in markdown
    assert "Fan-out" not in markdown  # the gap's studies did not run: not reported as missing either
    written = plot_queue_waterfall(attribution, tmp_path / "plots")
    assert written is not None and written.stat().st_size > 0


def _factor(step: int, name: str, change: float, share: float | None) -> QueueFactor:
    return QueueFactor(
        step=step, factor=name, from_="a", to="b", change_p50_ms=change, share_of_ideal_gap=share
    )


def test_sentences_follow_the_numbers() -> None:
    steps = [
        WaterfallStep(step=1, factor="client", architecture="queue", delta_p50_ms=-30.0),
        WaterfallStep(step=2, factor="wake-up", architecture="queue", delta_p50_ms=-10.0),
    ]
    queue = QueueWaterfall(
        steps=steps,
        baseline=Level(step=0, p50_ms=150.0, max_rps=20.0),
        tuned=Level(step=2, p50_ms=110.0, max_rps=20.0),
        ideal_p50_ms=50.0,
        ideal_gap_seed_ms=100.0,
        ideal_gap_tuned_ms=60.0,
        factors=[_factor(1, "client", -30.0, 0.3), _factor(2, "wake-up", -10.0, 0.1)],
    )
    text = " ".join(queue_sentences(queue, USERS))
    assert "Client (a → b) explains most of the queue's gap to its ideal: it cut the p50" in text
    assert "30% of the gap" in text and "The others: wake-up 10%" in text
    assert "+60.0 ms over its ideal (60% of the gap)" in text
    worse = queue.model_copy(
        update={"factors": [_factor(1, "client", 5.0, -0.05), _factor(2, "wake-up", 0.0, 0.0)]}
    )
    assert "No factor brought the queue nearer its ideal" in " ".join(queue_sentences(worse, USERS))
    missing = queue.model_copy(update={"baseline": None})
    assert queue_sentences(missing, USERS) == [
        "The queue's seed-faithful step was not measured: no gap to attribute."
    ]
