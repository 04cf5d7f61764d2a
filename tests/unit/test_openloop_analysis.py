"""The open-loop sweep and the cross-check from a small synthetic run folder (benchmark/analysis/openloop.py),
written in the layout of benchmark/openloop/records.py with the generator's own writers."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from benchmark.analysis.openloop import crosscheck_section, openloop_rates_at_limit, openloop_section
from benchmark.openloop.generator import write_json, write_records
from benchmark.openloop.records import (
    RequestRecord,
    crosscheck_dir,
    crosscheck_resources,
    rate_file,
    sweep_dir,
    sweep_resources,
)
from tests.unit.test_openloop_wrk import OUTPUT as WRK_OUTPUT

T0 = 1_700_000_000.0
STEP_S, PAUSE_S = 2.0, 1.0
RATES = (100.0, 200.0, 400.0)


def stream(rate: float, latency_s: float, errors: int = 0) -> list[RequestRecord]:
    """A constant stream for STEP_S with every request taking ``latency_s``; the first ``errors`` fail."""
    n = int(rate * STEP_S)
    return [
        RequestRecord(
            i / rate, i / rate, i / rate, i / rate + latency_s, i >= errors, "500" if i < errors else "200"
        )
        for i in range(n)
    ]


def write_sweep(run_dir: Path, rep: int, latencies: list[float], errors: list[int]) -> None:
    folder = sweep_dir(run_dir, "sync", rep)
    folder.mkdir(parents=True)
    entries = []
    for i, (rate, latency, failed) in enumerate(zip(RATES, latencies, errors)):
        write_records(folder / rate_file(i), stream(rate, latency, failed))
        start = T0 + rep * 100 + i * (STEP_S + PAUSE_S)
        entries.append(
            {
                "offered_rps": rate,
                "duration_s": STEP_S,
                "requests": int(rate * STEP_S),
                "start": start,
                "file": rate_file(i),
            }
        )
    write_json(
        folder / "sweep.json",
        {
            "architecture": "sync",
            "rep": rep,
            "arrivals": "constant",
            "seed": 0,
            "connections": 64,
            "rates": entries,
        },
    )


def write_resources(path: Path, rows: list[tuple[float, str, float]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["t", "name", "cpu_percent", "rss_mb"])
        writer.writerows([f"{t:.3f}", name, cpu, 50.0] for t, name, cpu in rows)


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    write_sweep(tmp_path, 0, [0.010, 0.030, 0.300], [0, 0, 0])
    write_sweep(tmp_path, 1, [0.010, 0.030, 0.300], [0, 10, 0])  # 200 req/s: 10 of 400 fail (2.5 %)
    samples = [(T0 - 0.5, "openloop", 99.0)]  # before the sweep: not any rate's
    for i, peak in enumerate((20.0, 40.0, 80.0)):
        start = T0 + i * (STEP_S + PAUSE_S)
        samples += [
            (start + 0.5, "openloop", peak / 2),
            (start + 1.5, "openloop", peak),
            (start + 1.0, "scoring-sync", 150.0),
        ]
    write_resources(sweep_resources(tmp_path, "sync", 0), samples)
    return tmp_path


def test_each_rate_of_the_first_repetition(run_dir: Path) -> None:
    section = openloop_section(run_dir, "sync", p99_limit_ms=100.0)
    assert section is not None and section.p99_limit_ms == 100.0
    assert [rate.offered_rps for rate in section.rates] == list(RATES)
    first = section.rates[0]
    assert first.arrivals == "constant" and first.requests == 200 and first.errors == 0
    assert first.p50_ms == pytest.approx(10, rel=1e-3) and first.held is True
    assert first.achieved_rps == pytest.approx(100)
    assert section.rates[2].p99_ms == pytest.approx(300, rel=1e-3)
    assert [rate.generator_cpu_percent for rate in section.rates] == [20.0, 40.0, 80.0]
    assert section.max_rate_under_limit_rps == 200.0
    assert section.rate_at_limit_rps == pytest.approx(200 + 200 * (100 - 30) / (300 - 30), rel=1e-3)


def test_the_rate_at_the_limit_of_each_repetition(run_dir: Path) -> None:
    first, second = openloop_rates_at_limit(run_dir, "sync", 100.0)
    assert first == pytest.approx(200 + 200 * (100 - 30) / (300 - 30), rel=1e-3)  # the p99 crosses 100 ms
    assert second == 100.0  # rep 1: 2.5 % errors at 200, so 100 is where it stops (no interpolation)
    assert openloop_rates_at_limit(run_dir, "sync", 5.0) == [None, None]
    assert openloop_rates_at_limit(run_dir, "async", 100.0) == []


def test_without_a_limit_no_rate_counts(run_dir: Path) -> None:
    section = openloop_section(run_dir, "sync", None)
    assert section is not None and section.max_rate_under_limit_rps is None and len(section.rates) == 3


def test_a_run_without_the_experiment_has_no_section(tmp_path: Path) -> None:
    assert openloop_section(tmp_path, "sync", 100.0) is None
    assert crosscheck_section(tmp_path, "sync", 500.0, 90.0, 60.0) is None


def test_a_rate_cut_short_counts_its_missing_requests_as_errors(run_dir: Path) -> None:
    path = sweep_dir(run_dir, "sync", 0) / rate_file(0)
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:101]) + "\n0.99")  # 100 rows, then a line cut short
    rate = openloop_section(run_dir, "sync", 100.0).rates[0]  # type: ignore[union-attr]
    assert rate.requests == 200 and rate.errors == 100 and rate.held is False


def write_closed(run_dir: Path, latency_s: float) -> None:
    """4 users for 1 s of warm-up and 2 s measured, each request taking ``latency_s``."""
    folder = crosscheck_dir(run_dir, "sync")
    folder.mkdir(parents=True)
    records = []
    for _user in range(4):
        t = 0.0
        while t < 3.0:
            records.append(RequestRecord(t, t, t, t + latency_s, True, "200"))
            t += latency_s
    write_records(folder / "closed.csv", records)
    info = {
        "architecture": "sync",
        "users": 4,
        "duration_s": 2.0,
        "warmup_s": 1.0,
        "start": T0,
        "file": "closed.csv",
    }
    write_json(folder / "closed.json", info)
    write_resources(
        crosscheck_resources(run_dir, "sync"), [(T0 + 1, "openloop", 35.0), (T0 + 2, "openloop", 45.0)]
    )


def test_the_closed_loop_cross_checks_locust(tmp_path: Path) -> None:
    write_closed(tmp_path, 0.050)  # 4 users / 50 ms = 80 req/s, p50 50 ms
    check = crosscheck_section(tmp_path, "sync", locust_rps=78.0, locust_p50_ms=51.0, locust_cpu_percent=60.0)
    assert check is not None and check.tool == "openloop (closed loop)" and check.users == 4
    assert check.other_rps == pytest.approx(80, rel=0.03) and check.other_p50_ms == pytest.approx(
        50, rel=1e-3
    )
    assert check.rps_difference == pytest.approx(80 / 78 - 1, abs=0.03)
    assert check.p50_difference == pytest.approx(50 / 51 - 1, abs=2e-3)
    assert check.locust_cpu_percent == 60.0 and check.other_cpu_percent == 45.0
    assert check.disagree is False


def test_a_difference_above_ten_percent_is_a_disagreement(tmp_path: Path) -> None:
    write_closed(tmp_path, 0.050)
    check = crosscheck_section(tmp_path, "sync", locust_rps=80.0, locust_p50_ms=40.0, locust_cpu_percent=None)
    assert check is not None and check.disagree is True  # p50 25 % above Locust's
    unknown = crosscheck_section(
        tmp_path, "sync", locust_rps=None, locust_p50_ms=None, locust_cpu_percent=None
    )
    assert unknown is not None and unknown.disagree is None and unknown.rps_difference is None


def test_wrk_when_it_ran(tmp_path: Path) -> None:
    write_closed(tmp_path, 0.050)
    (crosscheck_dir(tmp_path, "sync") / "wrk.txt").write_text(WRK_OUTPUT)
    write_resources(
        crosscheck_resources(tmp_path, "sync"), [(T0 + 1, "openloop", 35.0), (T0 + 5, "wrk", 70.0)]
    )
    check = crosscheck_section(
        tmp_path, "sync", locust_rps=1300.0, locust_p50_ms=48.0, locust_cpu_percent=90.0
    )
    assert check is not None and check.tool == "wrk" and check.users == 4
    assert check.other_rps == 1323.45 and check.other_p50_ms == 47.95
    assert check.other_cpu_percent == 70.0 and check.disagree is False
