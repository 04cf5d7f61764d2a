"""The report builder on a synthetic run folder whose results are known in advance."""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path
from typing import Any

import pytest

from benchmark.analysis import build_summary
from benchmark.report import build_report, compare_runs
from benchmark.summary import SCHEMA_VERSION, OneUser, Summary, finite
from scoring_bench.core.timing import parse_server_timing
from tests.fixtures.run_folder import (
    ARCHITECTURES,
    LOCUST_HOT_CPU,
    MACHINE_HOT_CPU,
    RAMP_BREAK_USERS,
    RAMP_USERS,
    SERVICE_CPU,
    TIMEIT_N,
    make_run_folder,
)

SECTIONS = (
    "ideal",
    "one_user",
    "timeit",
    "time_split",
    "ramp",
    "sustained",
    "stress",
    "profile",
    "saturation",
)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_run_folder(tmp_path_factory.mktemp("results") / "20261123-172500")


@pytest.fixture(scope="module")
def written(run_dir: Path) -> dict[str, Path]:
    return build_report(run_dir)


@pytest.fixture(scope="module")
def summary_json(written: dict[str, Path]) -> dict[str, Any]:
    return json.loads(written["summary"].read_text(encoding="utf-8"), parse_constant=_reject)


@pytest.fixture(scope="module")
def summary(written: dict[str, Path]) -> Summary:
    return Summary.load(written["summary"])


@pytest.fixture(scope="module")
def partial_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_run_folder(tmp_path_factory.mktemp("results") / "20261124-090000", complete=False)


def _reject(constant: str) -> None:
    raise AssertionError(f"summary.json holds {constant}")


def _numbers(value: Any) -> list[float]:
    if isinstance(value, dict):
        return [n for item in value.values() for n in _numbers(item)]
    if isinstance(value, list):
        return [n for item in value for n in _numbers(item)]
    return [value] if isinstance(value, (int, float)) and not isinstance(value, bool) else []


def _requests_in_window(run_dir: Path, phase: str, arch: str) -> tuple[int, float]:
    """Requests of the first step's measured window, and its length, read straight from the raw files."""
    step = json.loads((run_dir / "locust" / phase / f"{arch}_schedule.json").read_text())["steps"][0]
    low, high = step["start"] + step["warmup_s"], step["end"]
    count = 0
    for path in (run_dir / "locust" / phase).glob(f"{arch}_requests*.csv"):
        with path.open(newline="") as handle:
            count += sum(1 for row in csv.DictReader(handle) if low <= float(row["t"]) <= high)
    return count, high - low


def test_summary_has_schema_version_every_section_and_finite_numbers(
    summary: Summary, summary_json: dict[str, Any]
) -> None:
    assert summary.schema_version == SCHEMA_VERSION == summary_json["schema_version"] == 4
    assert summary.run_id == "20261123-172500" and summary.complete is True
    assert list(summary.architectures) == list(ARCHITECTURES)
    for arch in ARCHITECTURES:
        assert all(getattr(summary.architectures[arch], section) is not None for section in SECTIONS), arch
    numbers = _numbers(summary_json)
    assert len(numbers) > 100 and all(math.isfinite(n) for n in numbers)
    assert summary.attribution is None  # this run did not make the attribution experiment


def test_breaking_point_found_at_the_known_step(summary: Summary) -> None:
    for arch in ARCHITECTURES:
        ramp = summary.architectures[arch].ramp
        assert ramp is not None and ramp.breaking_point is not None and ramp.last_good is not None
        assert [step.users for step in ramp.steps] == list(RAMP_USERS)
        broke = RAMP_BREAK_USERS[arch]
        assert ramp.breaking_point.users == broke
        assert ramp.last_good.users == RAMP_USERS[RAMP_USERS.index(broke) - 1]
    assert _reason(summary, "sync").startswith("latency:")
    assert _reason(summary, "async").startswith("failures:")


def _reason(summary: Summary, arch: str) -> str:
    ramp = summary.architectures[arch].ramp
    assert ramp is not None and ramp.breaking_point is not None
    return ramp.breaking_point.reason


def test_server_cpu_per_request_is_the_integral_over_the_window(run_dir: Path, summary: Summary) -> None:
    for arch in ARCHITECTURES:
        requests, window_s = _requests_in_window(run_dir, "sustained", arch)
        expected = sum(SERVICE_CPU[arch].values()) / 100 * window_s * 1000 / requests  # warm-up excluded
        sustained = summary.architectures[arch].sustained
        assert sustained is not None and sustained.requests == requests
        assert sustained.server_cpu_ms_per_request == pytest.approx(expected, rel=1e-9)


def test_one_user_overhead_is_p50_minus_ideal(run_dir: Path, summary: Summary) -> None:
    sync = summary.architectures["sync"]
    assert sync.ideal is not None and sync.one_user is not None and sync.one_user.p50_ms is not None
    assert sync.ideal.p50_ms == pytest.approx(90.0)  # median of the sum of two U(40, 50)
    assert sync.one_user.overhead_p50_ms == pytest.approx(sync.one_user.p50_ms - 90.0)
    assert sync.one_user.requests == _requests_in_window(run_dir, "one_user", "sync")[0]


def test_time_split_sums_sync_model_calls_and_takes_the_async_maximum(
    run_dir: Path, summary: Summary
) -> None:
    for arch, combine in (("sync", sum), ("async", max)):
        with (run_dir / "timeit" / f"{arch}.csv").open(newline="") as handle:
            timings = [
                parse_server_timing(row["server_timing"])
                for row in csv.DictReader(handle)
                if row["status"] == "200"
            ]
        models = [combine(v for k, v in timing.items() if k.startswith("model_")) for timing in timings]
        split = summary.architectures[arch].time_split
        assert split is not None and split.models_ms == pytest.approx(sum(models) / len(models))
        timeit = summary.architectures[arch].timeit
        assert timeit is not None
        assert (timeit.n, timeit.failures) == (TIMEIT_N - 2, 2)  # the two 504s are left out


def test_stress_recovery_verdicts(summary: Summary) -> None:
    sync, other = summary.architectures["sync"].stress, summary.architectures["async"].stress
    assert sync is not None and sync.recovery is not None and other is not None and other.recovery is not None
    assert sync.failure_ratio == pytest.approx(0.2, abs=0.01)
    assert sync.recovery.recovered is False
    assert other.recovery.recovered is True


def test_saturation_flags_name_phase_and_numbers(summary: Summary) -> None:
    async_saturation = summary.architectures["async"].saturation
    sync_saturation = summary.architectures["sync"].saturation
    assert async_saturation is not None and sync_saturation is not None
    assert async_saturation.load_generator_max_cpu_percent == LOCUST_HOT_CPU
    flags = async_saturation.flags
    assert any(flag.startswith("ramp:") and "locust" in flag and "96%" in flag for flag in flags)
    sync_flags = sync_saturation.flags
    assert sync_flags == [flag for flag in sync_flags if flag.startswith("stress:")] and len(sync_flags) == 1
    assert f"{MACHINE_HOT_CPU:.0f}%" in sync_flags[0] and "4 cores" in sync_flags[0]


def test_timeit_improvement_has_an_interval(summary: Summary) -> None:
    improvement = summary.comparison.timeit_improvement_pct
    assert improvement is not None
    low, percent, high = improvement.low, improvement.percent, improvement.high
    assert low is not None and percent is not None and high is not None
    assert low < percent < high
    assert 40 < percent < 55  # async ≈ max of two calls, sync ≈ their sum


def test_report_writes_every_file_and_a_headline(written: dict[str, Path]) -> None:
    assert {"summary", "markdown", "html"} <= set(written)
    assert sum(name.startswith("plot_") for name in written) == 4
    assert all(path.exists() and path.stat().st_size > 0 for path in written.values())
    markdown = written["markdown"].read_text(encoding="utf-8")
    assert "| p50 at 1 user | 93." in markdown
    assert re.search(r"async served \d+\.\d× the sync throughput", markdown)
    assert "incomplete" not in markdown and "Synthetic CPU" in markdown
    assert "Attribution of the gap" not in markdown and "Not part of this run: attribution" in markdown


def test_report_html_is_self_contained(written: dict[str, Path]) -> None:
    page = written["html"].read_text(encoding="utf-8")
    assert len(re.findall(r'<img src="data:image/png;base64,[A-Za-z0-9+/=]+"', page)) >= 3
    assert not re.search(r"https?://", page)
    assert "<script" not in page and "<link" not in page


def test_partial_run_still_gets_a_report_that_says_so(partial_dir: Path) -> None:
    written = build_report(partial_dir)
    summary = Summary.load(written["summary"])
    assert summary.complete is False
    assert all(summary.architectures[arch].ramp is None for arch in ARCHITECTURES)
    assert summary.architectures["sync"].sustained is not None
    assert "plot_ramp" not in written
    for page in (written[kind].read_text(encoding="utf-8") for kind in ("markdown", "html")):
        assert "This run is incomplete" in page and "ramp (sync, async)" in page
        assert "the ramp did not run" in page and "interrupted by the user" in page


def test_compare_writes_both_run_ids(run_dir: Path, partial_dir: Path, tmp_path: Path) -> None:
    path = compare_runs(run_dir, partial_dir, tmp_path / "comparison")
    text = path.read_text(encoding="utf-8")
    assert path.name == "comparison.md" and (path.parent / "comparison.html").exists()
    assert "20261123-172500" in text and "20261124-090000" in text
    assert "| sync | breaking point | 8 users | — |" in text


def test_empty_or_missing_raw_files_give_none_sections(tmp_path: Path) -> None:
    run = tmp_path / "20260101-000000"
    (run / "locust" / "one_user").mkdir(parents=True)
    (run / "locust" / "one_user" / "sync_schedule.json").write_text("")  # cut short
    (run / "locust" / "one_user" / "sync_requests.1.csv").write_text("")
    (run / "timeit").mkdir()
    (run / "timeit" / "sync.csv").write_text("i,latency_ms,status,server_timing\n")
    summary = build_summary(run)
    assert summary.complete is False and summary.run_id == "20260101-000000"
    assert list(summary.architectures) == ["sync"]
    assert all(value is None for _, value in summary.architectures["sync"])
    assert summary.comparison.timeit_improvement_pct is None
    written = build_report(run)
    assert "This run is incomplete" in written["markdown"].read_text(encoding="utf-8")


def test_truncated_rows_and_an_unfinished_step_are_tolerated(tmp_path: Path) -> None:
    phase = tmp_path / "locust" / "one_user"
    phase.mkdir(parents=True)
    steps = [{"users": 1, "start": 100.0, "end": None, "warmup_s": 1.0}]
    (phase / "sync_schedule.json").write_text(json.dumps({"phase": "one_user", "steps": steps}))
    rows = "".join(f"{100.5 + i * 0.5},sync predict,{50 + i},1\n" for i in range(20))
    (phase / "sync_requests.7.csv").write_text("t,name,latency_ms,ok\n" + rows + "110.2,sync pr")
    one_user = build_summary(tmp_path).architectures["sync"].one_user
    assert one_user is not None
    assert one_user.requests == 19  # t from 101.0 (warm-up over) to 110.0, the last request
    assert one_user.rps == pytest.approx(19 / 9.0)


def test_ideal_comes_from_the_recorded_settings_not_this_process(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NUM_MODELS", "4")
    ideal = build_summary(run_dir).architectures["sync"].ideal
    assert ideal is not None and ideal.p50_ms == pytest.approx(90.0)


def test_non_finite_numbers_become_null(tmp_path: Path) -> None:
    assert finite({"a": float("nan"), "b": [float("inf"), 1.5], "c": {"d": -float("inf")}}) == {
        "a": None,
        "b": [None, 1.5],
        "c": {"d": None},
    }
    assert finite((1, float("nan"))) == [1, None]
    one_user = OneUser(p50_ms=float("nan"), p95_ms=float("inf"), p99_ms=2.5)
    assert (one_user.p50_ms, one_user.p95_ms, one_user.p99_ms) == (None, None, 2.5)
    summary = Summary(
        run_id="r",
        environment={"settings": {"x": [float("-inf"), 1.0]}},
        architectures={"sync": {"one_user": {"p50_ms": float("nan")}}},
    )
    path = summary.write(tmp_path)
    data = json.loads(path.read_text(), parse_constant=_reject)
    assert data["environment"]["settings"] == {"x": [None, 1.0]}
    assert data["architectures"]["sync"]["one_user"]["p50_ms"] is None
