"""The machine's calibration (benchmark/calibration.py): its arithmetic and warning rules with given
numbers, and one short real calibration that must give finite numbers (never a speed)."""

from __future__ import annotations

import math

import pytest

from benchmark.calibration import (
    BUSY_PERCENT,
    DRIFT_PERCENT,
    STEAL_PERCENT,
    ProcessCpu,
    busiest,
    calibrate,
    calibrated,
    calibration_warnings,
    cpu_use,
    drift_warning,
    median,
    overshoot_ms,
    per_loop_us,
    speed_drift_percent,
    steal_percent,
)
from benchmark.summary import Calibration

CPU_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal", "guest", "guest_nice")


def cpu_times(**values: float) -> dict[str, float]:
    return {field: values.get(field, 0.0) for field in CPU_FIELDS}


def test_median() -> None:
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([1.0, 2.0, 3.0, 10.0]) == 2.5
    assert median([]) is None


def test_per_loop_us_is_the_median_timing_over_the_loops() -> None:
    assert per_loop_us([0.030, 0.020, 0.025], 200) == pytest.approx(125.0)
    assert per_loop_us([], 200) is None


def test_overshoot() -> None:
    assert overshoot_ms(0.045, 0.0461) == pytest.approx(1.1)
    assert overshoot_ms(0.045, 0.045) == 0.0


def test_steal_is_a_share_of_all_the_cpu_time_guest_counted_once() -> None:
    before = cpu_times(user=100, idle=800, steal=10, guest=5)
    after = cpu_times(user=130, system=10, idle=950, steal=20, guest=50)  # guest is inside user
    assert steal_percent(before, after) == pytest.approx(100 * 10 / (30 + 10 + 150 + 10))


def test_steal_unknown_without_the_field_or_without_time() -> None:
    assert steal_percent({"user": 1.0, "idle": 2.0}, {"user": 2.0, "idle": 3.0}) is None
    assert steal_percent(cpu_times(user=1), cpu_times(user=1)) is None


def test_cpu_use_per_process() -> None:
    before = {(10, 1.0): ProcessCpu("postgres", 5.0), (11, 1.0): ProcessCpu("gone", 1.0)}
    after = {
        (10, 1.0): ProcessCpu("postgres", 5.3),  # 0.3 s over 3 s: 10 %
        (12, 101.0): ProcessCpu("make", 0.6),  # started during the window: all of it
        (13, 50.0): ProcessCpu("unseen before", 9.0),  # older, missing from the first sample
        (10, 200.0): ProcessCpu("recycled pid", 0.0),  # another process with the same pid
    }
    use = cpu_use(before, after, started_at=100.0, window_s=3.0)
    assert use == pytest.approx({(10, 1.0): 10.0, (12, 101.0): 20.0, (10, 200.0): 0.0})


def test_busiest() -> None:
    names = {(10, 1.0): ProcessCpu("postgres", 0), (12, 2.0): ProcessCpu("make", 0)}
    assert busiest({(10, 1.0): 10.0, (12, 2.0): 20.4}, names) == "make (12): 20.4%"
    assert busiest({(10, 1.0): 0.0}, names) is None
    assert busiest({}, names) is None


def test_a_quiet_machine_has_no_warnings() -> None:
    assert calibration_warnings(BUSY_PERCENT, "x (1): 10%", STEAL_PERCENT, 3.0) == []
    assert calibration_warnings(None, None, None, 3.0) == []


def test_a_busy_machine_is_named() -> None:
    (warning,) = calibration_warnings(35.0, "locust (4242): 30%", 0.0, 3.0)
    assert "busy" in warning and "35%" in warning and "locust (4242): 30%" in warning


def test_high_steal_is_a_warning() -> None:
    (warning,) = calibration_warnings(0.0, None, 4.2, 3.0)
    assert "steal" in warning and "4.2%" in warning


def test_cpu_ms_in_calibrated_units() -> None:
    calibration = Calibration(cpu_benchmark_us=125.0)
    assert calibrated(2.0, calibration) == pytest.approx(16.0)  # 2 ms = 16 loops of 0.125 ms
    assert calibrated(None, calibration) is None
    assert calibrated(2.0, None) is None
    assert calibrated(2.0, Calibration()) is None
    assert calibrated(2.0, Calibration(cpu_benchmark_us=0.0)) is None


def test_a_short_calibration_gives_finite_numbers() -> None:
    result = calibrate(check_s=1.0)
    numbers = [
        result.cpu_benchmark_us,
        result.asyncio_sleep_overshoot_ms,
        result.time_sleep_overshoot_ms,
        result.other_cpu_percent,
        result.check_s,
    ]
    assert all(n is not None and math.isfinite(n) for n in numbers), result
    assert result.cpu_benchmark_us is not None and result.cpu_benchmark_us > 0
    assert result.check_s is not None and result.check_s >= 1.0
    assert result.steal_percent is None or math.isfinite(result.steal_percent)
    assert "sum(range(10000))" in result.cpu_benchmark


def test_a_speed_drift_beyond_the_threshold_is_warned_about() -> None:
    before = Calibration(cpu_benchmark_us=100.0)
    assert speed_drift_percent(before, Calibration(cpu_benchmark_us=103.0)) == pytest.approx(3.0)
    assert drift_warning(before, Calibration(cpu_benchmark_us=99.9 + DRIFT_PERCENT)) is None
    slower = drift_warning(before, Calibration(cpu_benchmark_us=108.0))
    assert slower is not None and "8% slower" in slower
    faster = drift_warning(before, Calibration(cpu_benchmark_us=90.0))
    assert faster is not None and "10% faster" in faster
    assert speed_drift_percent(before, None) is None and drift_warning(Calibration(), before) is None


def test_the_machine_section_shows_the_calibration_after_and_warns_of_a_drift() -> None:
    from benchmark.report.trust import calibration_lines
    from benchmark.report.trust import calibration_warnings as report_warnings
    from benchmark.summary import Environment

    before = Calibration(cpu_benchmark_us=100.0)
    after = Calibration(cpu_benchmark_us=112.0, steal_percent=0.5)
    environment = Environment(calibration=before, calibration_after=after)
    lines = calibration_lines(environment)
    assert any(line.startswith("after the measurements") and "+12.0 %" in line for line in lines)
    (warning,) = report_warnings(environment)
    assert "12% slower" in warning and any(warning in line for line in lines)
    assert report_warnings(Environment(calibration=before)) == []
