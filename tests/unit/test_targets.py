from __future__ import annotations

from typing import Any

from benchmark.summary import ArchitectureSummary, Environment, OneUser, Summary, Sustained
from benchmark.targets import check_targets
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


def test_targets_met_and_missed() -> None:
    checks = check_targets(_summary(2.0, 500.0, 900.0, 9.0))
    met = {(c.architecture, c.target.split()[0]): c.met for c in checks}
    assert met[("sync", "p50")] is True and met[("async", "p50")] is True
    assert met[("sync", "maximum")] is True and met[("async", "maximum")] is False
    assert met[("all", "the")] is True
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
