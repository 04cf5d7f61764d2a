"""The queue waterfall's step beyond tuned (study ``engine``): the tuned queue on taskiq instead of Celery —
planned, analysed apart from the factors, reported against the tuned queue (synthetic measurements)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from benchmark.analysis import attribution as analysis
from benchmark.analysis.attribution import attribution_section
from benchmark.attribution import ENGINE_FACTOR, QUEUE_STUDY, queue_waterfall, tuned_values
from benchmark.report.attribution_queue import queue_sentences, queue_waterfall_table
from benchmark.settings import BenchSettings
from scoring_bench.core.presets import SEED_QUEUE
from scoring_bench.core.settings import Settings
from tests.unit import test_attribution_queue as queue_tests


def _bench(**values: Any) -> BenchSettings:
    return queue_tests._bench(**{"bench_attribution_studies": ["queue", "engine"], **values})


def test_the_engine_step_follows_the_tuned_queue() -> None:
    configs = queue_waterfall(_bench())
    tuned, engine = configs[-2], configs[-1]
    assert tuned.overrides == tuned_values(list(SEED_QUEUE))  # the waterfall still reaches tuned first
    assert engine.factor == ENGINE_FACTOR == analysis.ENGINE_FACTOR and engine.study == QUEUE_STUDY
    assert engine.overrides == {**tuned.overrides, "queue_engine": "taskiq"}
    assert (engine.before, engine.after, engine.client) == ("Celery", "taskiq", tuned.client)
    assert engine.step == tuned.step + 1
    assert "engine" in BenchSettings().bench_attribution_studies  # on by default


def test_no_engine_step_unless_asked_for_or_when_taskiq_cannot_run() -> None:
    assert all(c.factor != ENGINE_FACTOR for c in queue_waterfall(queue_tests._bench()))  # study not asked
    chosen = queue_waterfall(_bench(queue_engine="celery"))  # the user chose the engine
    assert all(c.factor != ENGINE_FACTOR for c in chosen)
    rabbit = queue_waterfall(_bench(broker_url="amqp://guest:guest@127.0.0.1:5672//"))
    assert rabbit and all(c.factor != ENGINE_FACTOR for c in rabbit)  # taskiq needs a Redis broker


def _write(run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[float], list[float]]:
    """The shared synthetic writer, on a waterfall with the engine step (its p50 −10 ms and tasks/s +100
    against tuned)."""
    with_engine = queue_waterfall(_bench())
    monkeypatch.setattr(queue_tests, "queue_waterfall", lambda _: with_engine)
    p50s, rates = queue_tests._means(len(with_engine) - 1)
    p50s, rates = [*p50s, p50s[-1] - 10.0], [*rates, rates[-1] + 100.0]
    queue_tests.write_queue_run(run_dir, p50s, rates)
    return p50s, rates


def test_the_engine_step_is_analysed_against_tuned_and_is_no_factor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p50s, rates = _write(tmp_path, monkeypatch)
    attribution = attribution_section(tmp_path, Settings())
    assert attribution is not None and attribution.queue is not None
    queue = attribution.queue
    assert queue.tuned is not None and queue.tuned.p50_ms == pytest.approx(p50s[-2])  # tuned: Celery's
    assert queue.tuned.max_rps == pytest.approx(rates[-2])
    assert all(step.factor != ENGINE_FACTOR for step in queue.steps)
    assert all(factor.factor != ENGINE_FACTOR for factor in queue.factors)
    assert sum(f.share_rps or 0.0 for f in queue.factors) == pytest.approx(1.0)  # shares: seed → tuned
    engine = queue.engine
    assert engine is not None and (engine.from_, engine.to) == ("Celery", "taskiq")
    assert engine.delta_p50_ms == pytest.approx(-10.0) and engine.delta_rps == pytest.approx(100.0)
    tuned_cpu, engine_cpu = queue.tuned.cpu_ms_per_request, engine.cpu_ms_per_request
    assert (
        tuned_cpu is not None and engine_cpu is not None and engine_cpu > tuned_cpu
    )  # the writer's cpu grows
    text = " ".join(queue_sentences(queue, queue_tests.USERS))
    assert "Beyond the tuned queue, the same settings on taskiq instead of Celery" in text
    assert "−10.0 ms" in text or "-10.0 ms" in text
    assert "taskiq costs" in text and "more" in text  # the synthetic CPU grows with the step
    cheaper = engine.model_copy(update={"cpu_ms_per_request": tuned_cpu / 2})
    assert "50% of the tuned queue's CPU per task is Celery's" in " ".join(
        queue_sentences(queue.model_copy(update={"engine": cheaper}), queue_tests.USERS)
    )
    rows = queue_waterfall_table(queue).rows
    labels = [row[0] for row in rows]
    assert labels.index("engine (beyond tuned)") == labels.index("tuned (level)") + 1
