from __future__ import annotations

from typing import Any

import pytest

from benchmark.settings import EXPERIMENTS
from benchmark.summary import ArchitectureSummary, Environment, OneUser, Summary, Sustained
from benchmark.targets import TargetCheck, check_targets
from scoring_bench.core.settings import Settings


def _arch(overhead: float, rps: float) -> ArchitectureSummary:
    return ArchitectureSummary(one_user=OneUser(overhead_p50_ms=overhead), sustained=Sustained(rps=rps))


def _summary(overhead: float, sync_rps: float, async_rps: float, minutes: float, **settings: Any) -> Summary:
    return Summary(
        run_id="r",
        profile="quick",
        started_at=1000.0,
        finished_at=1000.0 + minutes * 60,
        environment=Environment(settings=Settings(**settings).model_dump(mode="json")),
        architectures={"sync": _arch(overhead, sync_rps), "async": _arch(overhead, async_rps)},
    )


def _whole(summary: Summary) -> Summary:
    """The summary of a run of every architecture."""
    others = {"batched": _arch(8.0, 1500.0), "queue": _arch(5.0, 300.0)}
    return summary.model_copy(update={"architectures": {**summary.architectures, **others}})


def test_targets_met_and_missed() -> None:
    checks = check_targets(_whole(_summary(2.0, 500.0, 900.0, 9.0)))
    met = {(c.architecture, c.target.split()[0]): c.met for c in checks}
    assert met[("sync", "p50")] is True and met[("async", "p50")] is True
    assert met[("sync", "maximum")] is True and met[("async", "maximum")] is False
    assert met[("all", "the")] is True
    assert (
        next(
            c for c in check_targets(_whole(_summary(2.0, 500.0, 900.0, 11.0))) if c.architecture == "all"
        ).met
        is False
    )


def test_the_quick_duration_is_judged_only_for_a_whole_quick_run() -> None:
    def duration(summary: Summary) -> TargetCheck:
        return next(c for c in check_targets(summary) if c.architecture == "all")

    assert duration(_whole(_summary(2.0, 500.0, 900.0, 2.0))).met is True
    part = duration(_summary(2.0, 500.0, 900.0, 2.0))  # no queue, no batched
    assert part.met is None and "only part" in part.note
    no_batched = _whole(_summary(2.0, 500.0, 900.0, 2.0))
    no_batched.architectures.pop("batched")
    assert duration(no_batched).met is None
    some = _whole(_summary(2.0, 500.0, 900.0, 2.0)).model_copy(update={"experiments": ["timeit"]})
    assert duration(some).met is None and "only part" in duration(some).note
    every = some.model_copy(update={"experiments": [*EXPERIMENTS, "faults"]})
    assert duration(every).met is True
    full = every.model_copy(update={"profile": "full"})
    assert duration(full).met is None and "not the quick profile" in duration(full).note
    assert check_targets(_summary(3.5, 500.0, 1200.0, 11.0))[0].met is False


def test_targets_do_not_apply_to_other_workloads() -> None:
    checks = check_targets(_summary(1.0, 500.0, 1200.0, 5.0, num_models=4))
    assert all(c.met is None for c in checks if c.architecture != "all")
    assert all("not applicable" in c.note for c in checks if c.architecture != "all")


def test_a_missing_measurement_is_not_a_verdict() -> None:
    summary = _summary(1.0, 500.0, 1200.0, 5.0)
    archs = dict(summary.architectures)
    archs["async"] = archs["async"].model_copy(update={"sustained": None})
    summary = summary.model_copy(update={"architectures": archs})
    check = next(c for c in check_targets(summary) if c.architecture == "async" and "throughput" in c.target)
    assert check.met is None and check.measured is None


def test_a_throughput_target_scales_with_the_machines_speed() -> None:
    from benchmark.summary import Calibration, Repeated, Repeats

    slow = _summary(2.0, 300.0, 600.0, 9.0)
    environment = slow.environment.model_copy(update={"calibration": Calibration(cpu_benchmark_us=200.0)})
    archs = dict(slow.architectures)
    archs["async"] = archs["async"].model_copy(
        update={
            "repeats": Repeats(
                sustained_rps=Repeated(values=[600.0, 520.0, 610.0], median=600.0, min=520.0, max=610.0, n=3)
            )
        }
    )
    checks = check_targets(slow.model_copy(update={"environment": environment, "architectures": archs}))
    by = {(c.architecture, c.target.split()[0]): c for c in checks}
    assert by[("async", "maximum")].limit == 500.0 and by[("async", "maximum")].met is True  # 1,000 × 100/200
    assert by[("sync", "maximum")].limit == 225.0 and by[("sync", "maximum")].measured == 300.0
    assert "× 0.50 for this one's speed" in by[("async", "maximum")].target


def _queue_summary(overhead: float, sync: tuple[float, float], queue: tuple[float, float]) -> Summary:
    """sync and queue: (sustained req/s or tasks/s, server CPU ms per request or task)."""
    from benchmark.summary import Ideal, Repeated, Repeats

    def arch(rps: float, cpu: float, p50: float) -> ArchitectureSummary:
        def rep(value: float) -> Repeated:
            return Repeated(
                values=[value, value * 1.1, value * 0.9], median=value, min=value * 0.9, max=value * 1.1, n=3
            )

        return ArchitectureSummary(
            ideal=Ideal(p50_ms=47.1),
            sustained=Sustained(rps=rps * 2, server_cpu_ms_per_request=cpu * 2),  # the medians win over these
            repeats=Repeats(
                one_user_p50_ms=rep(p50), sustained_rps=rep(rps), server_cpu_ms_per_request=rep(cpu)
            ),
        )

    summary = _summary(2.0, sync[0], 900.0, 9.0)
    archs = {
        "sync": arch(*sync, 98.0),
        "async": summary.architectures["async"],
        "queue": arch(*queue, 47.1 + overhead),
    }
    return summary.model_copy(update={"architectures": archs})


def test_the_queue_is_held_to_its_ideal_and_to_the_sync_handler_of_the_same_run() -> None:
    by = {
        c.target.split()[0]: c
        for c in check_targets(_queue_summary(8.4, (424.0, 3.92), (226.7, 7.0)))
        if c.architecture == "queue"
    }
    assert (
        by["p50"].measured == pytest.approx(8.4) and by["p50"].met is False
    )  # 8.4 > 8 ms (the medians', not 2× the phase's)
    assert by["server"].measured == pytest.approx(7.0 / 3.92) and by["server"].met is True
    assert by["sustained"].measured == pytest.approx(226.7 / 424.0) and by["sustained"].met is False
    better = {
        c.target.split()[0]: c.met
        for c in check_targets(_queue_summary(5.0, (424.0, 3.92), (320.0, 8.0)))
        if c.architecture == "queue"
    }
    assert better == {"p50": True, "server": False, "sustained": True}  # 8.0 / 3.92 > 2×; 320 / 424 ≥ 0.7×
    other = _queue_summary(5.0, (424.0, 3.92), (320.0, 5.0)).model_copy(
        update={"environment": Environment(settings=Settings(num_models=4).model_dump(mode="json"))}
    )
    assert all(c.met is None for c in check_targets(other) if c.architecture == "queue")
    assert not any(c.architecture == "queue" for c in check_targets(_summary(1.0, 500.0, 1200.0, 5.0)))


def test_the_async_handler_is_held_to_the_minimal_control_when_it_ran() -> None:
    from benchmark.summary import Control

    summary = _summary(1.0, 500.0, 1200.0, 5.0)
    assert not any("control" in c.target for c in check_targets(summary))
    control = Control(ratio_median=0.96, p50_diff_ms=0.16)
    checks = [
        c for c in check_targets(summary.model_copy(update={"control": control})) if "control" in c.target
    ]
    assert [(c.measured, c.limit, c.met) for c in checks] == [(0.96, 1.0, False), (0.16, 0.5, True)]


def test_the_queue_on_taskiq_is_judged_from_the_attributions_engine_step() -> None:
    from benchmark.summary import Attribution, Level, QueueWaterfall, WaterfallStep

    engine = WaterfallStep(
        step=10, factor="engine", from_="celery", to="taskiq", architecture="queue", p50_ms=53.1
    )
    engine = engine.model_copy(update={"max_rps": 515.0, "cpu_ms_per_request": 3.14})
    queue = QueueWaterfall(ideal_p50_ms=47.1, engine=engine)
    tuned_sync = Level(step=9, max_rps=527.0, cpu_ms_per_request=2.68)
    attribution = Attribution(load_users=64, queue=queue, tuned={"sync": tuned_sync})
    summary = _summary(1.0, 500.0, 1200.0, 5.0).model_copy(update={"attribution": attribution})
    checks = {c.target.split()[0]: c for c in check_targets(summary) if c.architecture == "queue on taskiq"}
    assert checks["p50"].measured == pytest.approx(6.0) and checks["p50"].met is True
    assert checks["server"].measured == pytest.approx(3.14 / 2.68) and checks["server"].met is True
    assert checks["completed"].measured == pytest.approx(515.0 / 527.0) and checks["completed"].met is True
    assert "64 closed-loop users" in checks["completed"].target
    slow = attribution.model_copy(
        update={"queue": queue.model_copy(update={"engine": engine.model_copy(update={"max_rps": 300.0})})}
    )
    slow_checks = check_targets(summary.model_copy(update={"attribution": slow}))
    assert next(c for c in slow_checks if c.target.startswith("completed")).met is False  # 300 / 527 < 0.7
    unmeasured = attribution.model_copy(update={"tuned": None})
    lacking = [
        c
        for c in check_targets(summary.model_copy(update={"attribution": unmeasured}))
        if "tuned step" in c.target
    ]
    assert lacking and all(c.met is None and "not measured" in c.note for c in lacking)
    no_engine = attribution.model_copy(update={"queue": queue.model_copy(update={"engine": None})})
    assert not any(
        c.architecture == "queue on taskiq"
        for c in check_targets(summary.model_copy(update={"attribution": no_engine}))
    )
