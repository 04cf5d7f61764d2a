"""The comparison tab's decisions (benchmark/locust_ui_rows.py): rows from stats snapshots, ideals,
ratios, formatting; and its shell (benchmark/locust_ui.py) on a real Locust web UI app, in a child
process: importing Locust monkey-patches the whole process with gevent, which the other tests of a
pytest worker must not inherit."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from benchmark import locust_ui_rows
from benchmark.ideal import IdealLatency, batched_ideal_latency_ms, ideal_latency_ms
from benchmark.locust_ui_rows import (
    ComparisonRow,
    EntrySnapshot,
    comparison_rows,
    display_row,
    ideal_formula,
    ideals_for,
    main_entry,
    rows_csv,
    snapshot,
    template_args,
    with_extended_stats,
)
from scoring_bench.core.settings import Settings

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _settings(**overrides: Any) -> Settings:
    """Every field the ideals read explicit, so no environment variable leaks into a test."""
    values: dict[str, Any] = {
        "num_models": 2,
        "model_latency": "uniform",
        "model_latency_min_ms": 40.0,
        "model_latency_max_ms": 50.0,
        "model_latency_cap_ms": 5_000.0,
        "model_calls": "auto",
        "queue_model_calls": "auto",
        "batch_max_size": 32,
        "batch_max_wait_ms": 5,
        "model_batch_per_item_ms": 0.1,
    }
    values.update(overrides)
    return Settings(**values)


def _ideal(p50: float) -> IdealLatency:
    return IdealLatency(mean_ms=p50, p50_ms=p50, p95_ms=p50 + 2, p99_ms=p50 + 3, description=f"ideal {p50}")


IDEALS = {"sync": _ideal(90.0), "async": _ideal(46.0), "batched": _ideal(52.0), "queue": _ideal(92.0)}


def _snap(p50: float, rps: float, requests: int = 100, failures: int = 0) -> EntrySnapshot:
    return EntrySnapshot(requests, failures, p50, p50 + 10, p50 + 20, rps)


def test_main_entries_follow_the_contract() -> None:
    assert [main_entry(a) for a in locust_ui_rows.ARCHITECTURES] == [
        "sync predict",
        "async predict",
        "batched predict",
        "queue end_to_end",
    ]


def test_rows_per_architecture_with_ideal_overhead_and_ratios_to_sync() -> None:
    snaps = {
        "sync predict": _snap(100.0, 40.0),
        "async predict": _snap(50.0, 80.0),
        "queue submit": _snap(3.0, 500.0),  # a step of the queue's request: not its row
        "queue poll": _snap(90.0, 500.0),
        "queue end_to_end": _snap(120.0, 30.0, requests=50, failures=5),
    }
    rows = comparison_rows(snaps, IDEALS)
    assert [r.architecture for r in rows] == ["sync", "async", "queue"]  # batched did not run
    sync, async_, queue = rows
    assert sync.entry == "sync predict" and sync.p50_vs_sync is None and sync.rps_vs_sync is None
    assert sync.overhead_p50_ms == pytest.approx(10.0)
    assert sync.overhead_p50_pct == pytest.approx(100 * 10 / 90)
    assert async_.ideal_p50_ms == 46.0 and async_.ideal_p99_ms == 49.0
    assert async_.overhead_p50_ms == pytest.approx(4.0)
    assert async_.p50_vs_sync == pytest.approx(0.5)
    assert async_.rps_vs_sync == pytest.approx(2.0)
    assert queue.entry == "queue end_to_end" and queue.p50_ms == 120.0 and queue.rps == 30.0
    assert queue.failures == 5 and queue.fail_pct == pytest.approx(10.0)
    assert queue.p50_vs_sync == pytest.approx(1.2) and queue.rps_vs_sync == pytest.approx(0.75)


def test_without_sync_there_are_no_ratios() -> None:
    rows = comparison_rows({"async predict": _snap(50.0, 80.0), "batched predict": _snap(60, 90)}, IDEALS)
    assert [r.architecture for r in rows] == ["async", "batched"]
    assert all(r.p50_vs_sync is None and r.rps_vs_sync is None for r in rows)


def test_an_entry_without_requests_is_not_a_row_nor_a_baseline() -> None:
    empty = EntrySnapshot(0, 0, None, None, None, 0.0)
    rows = comparison_rows({"sync predict": empty, "async predict": _snap(50.0, 80.0)}, IDEALS)
    assert [r.architecture for r in rows] == ["async"]
    assert rows[0].p50_vs_sync is None


def test_a_zero_baseline_gives_no_ratio() -> None:
    rows = comparison_rows({"sync predict": _snap(100.0, 0.0), "async predict": _snap(50.0, 80.0)}, IDEALS)
    assert rows[1].p50_vs_sync == pytest.approx(0.5)
    assert rows[1].rps_vs_sync is None


def test_legacy_bare_names_are_not_rows() -> None:
    """A bare ``predict`` merges sync and async: it cannot be put beside either's ideal."""
    assert comparison_rows({"predict": _snap(70.0, 100.0), "end_to_end": _snap(90, 10)}, IDEALS) == []


def test_ideals_are_the_reports() -> None:
    settings = _settings()
    ideals = ideals_for(settings)
    assert set(ideals) == {"sync", "async", "batched", "queue"}
    assert ideals["sync"] == ideal_latency_ms(settings, concurrent=False)
    assert ideals["async"] == ideal_latency_ms(settings, concurrent=True)
    assert ideals["batched"] == batched_ideal_latency_ms(settings)
    assert ideals["queue"] == ideal_latency_ms(settings, concurrent=False)  # the worker runs sync's code
    assert ideals["async"].p50_ms == pytest.approx(40 + 10 * 0.5**0.5)  # median of the max of two U(40, 50)
    assert ideals["sync"].p50_ms == pytest.approx(90.0)


def test_ideals_follow_the_settings() -> None:
    ideals = ideals_for(_settings(num_models=4, model_calls="concurrent", queue_model_calls="concurrent"))
    assert ideals["sync"].p50_ms == pytest.approx(40 + 10 * 0.5**0.25)
    assert ideals["queue"] == ideals["sync"]
    fixed = ideals_for(_settings(model_latency="fixed", model_latency_fixed_ms=20.0, num_models=3))
    assert fixed["sync"].p50_ms == pytest.approx(60.0) and fixed["async"].p50_ms == pytest.approx(20.0)


@dataclass
class _Entry:
    """A stand-in for ``locust.stats.StatsEntry`` (the real one is exercised in the child process below)."""

    num_requests: int
    num_failures: int
    current_rps: float
    percentiles: dict[float, int]

    def get_response_time_percentile(self, percent: float) -> int:
        return self.percentiles[percent]


def test_snapshot_reads_the_entrys_percentiles_counts_and_current_rps() -> None:
    entry = _Entry(100, 1, 12.5, {0.50: 50, 0.95: 95, 0.99: 99})
    assert snapshot(entry) == EntrySnapshot(100, 1, 50.0, 95.0, 99.0, 12.5)


def test_snapshot_of_an_entry_without_requests_has_no_percentiles() -> None:
    assert snapshot(_Entry(0, 0, 0.0, {})) == EntrySnapshot(0, 0, None, None, None, 0.0)


def _row(**overrides: Any) -> ComparisonRow:
    values: dict[str, Any] = {
        "architecture": "async",
        "entry": "async predict",
        "requests": 12345,
        "failures": 0,
        "fail_pct": 0.0,
        "p50_ms": 50.0,
        "p95_ms": 120.0,
        "p99_ms": None,
        "rps": 81.234,
        "ideal_p50_ms": 47.07,
        "ideal_p95_ms": 49.7,
        "ideal_p99_ms": 49.9,
        "ideal": "E[max of 2 × U(40, 50)] = 46.7 ms",
        "overhead_p50_ms": 2.93,
        "overhead_p50_pct": 6.2,
        "p50_vs_sync": 0.5,
        "rps_vs_sync": None,
    }
    values.update(overrides)
    return ComparisonRow(**values)


def test_display_formats_every_column_and_marks_missing_values() -> None:
    cells = {key: value.replace("\u00a0", " ") for key, value in display_row(_row()).items()}
    assert set(cells) == {key for key, _ in locust_ui_rows.TABLE_COLUMNS}
    assert cells["entry"] == "async predict"
    assert cells["requests"] == "12,345" and cells["failures"] == "0"
    assert cells["p50_ms"] == "50" and cells["p95_ms"] == "120" and cells["p99_ms"] == "–"
    assert cells["rps"] == "81.2" and cells["ideal_ms"] == "47.1 / 49.7 / 49.9"
    assert cells["overhead_p50"] == "+2.9 ms (+6 %)"
    assert cells["p50_vs_sync"] == "0.50×" and cells["rps_vs_sync"] == "–"
    assert cells["ideal"] == "E[max of 2 × U(40, 50)] = 46.7 ms"
    assert display_row(_row(failures=3, fail_pct=0.0243))["failures"] == "3\u00a0(0.0\u00a0%)"
    assert (
        display_row(_row(overhead_p50_ms=-1.5, overhead_p50_pct=-3.2))["overhead_p50"]
        == "-1.5\u00a0ms (-3\u00a0%)"
    )


def test_the_ideals_formula_without_its_explanation() -> None:
    settings = _settings()
    ideals = ideals_for(settings)
    assert ideal_formula(ideals["sync"].description, "sync") == "E[sum of 2 × U(40, 50)] = 90.0 ms"
    batched = ideal_formula(ideals["batched"].description, "batched")
    assert batched == "E[max of 2 × (U(40, 50) + 0.1)] + 5 ms = 51.8 ms, at one user"
    lognormal = ideals_for(
        _settings(model_latency="lognormal", model_latency_median_ms=45.0, model_latency_sigma=0.5)
    )
    assert "Monte Carlo" in lognormal["sync"].description  # its note goes, its formula stays
    assert ideal_formula(lognormal["sync"].description, "sync").startswith("E[sum of 2 × LogN(median 45")
    assert "Monte Carlo" not in ideal_formula(lognormal["sync"].description, "sync")


def test_extended_stats_carry_the_rows_and_keep_other_extensions() -> None:
    payload = {
        "stats": [],
        "extended_stats": [{"key": "other", "data": [1]}, {"key": "comparison", "data": []}],
    }
    out = with_extended_stats(payload, [_row()])
    assert out["stats"] == []
    assert out["extended_stats"][0] == {"key": "other", "data": [1]}
    assert out["extended_stats"][1]["key"] == "comparison"
    assert out["extended_stats"][1]["data"] == [display_row(_row())]
    assert len(out["extended_stats"]) == 2


def test_csv_has_a_header_and_raw_numbers() -> None:
    parsed = list(csv.DictReader(io.StringIO(rows_csv([_row()]))))
    assert len(parsed) == 1
    assert parsed[0]["entry"] == "async predict" and parsed[0]["rps"] == "81.234"
    assert parsed[0]["p99_ms"] == "" and parsed[0]["p50_vs_sync"] == "0.5"


def test_template_args_name_the_tab_its_columns_and_its_csv() -> None:
    args = template_args("/ui")
    assert args["extended_tabs"] == [{"title": "Comparison", "key": "comparison"}]
    [table] = args["extended_tables"]
    assert table["key"] == "comparison"
    assert [c["key"] for c in table["structure"]] == [key for key, _ in locust_ui_rows.TABLE_COLUMNS]
    assert args["extended_csv_files"][0]["href"] == "/ui/comparison/csv"


# --------------------------------------------------------------------------- the shell, on a real web UI app

_SHELL_CHECK = textwrap.dedent(
    """
    import json
    from locust import FastHttpUser, task
    from locust.env import Environment
    from benchmark import locust_ui
    from scoring_bench.core.settings import Settings

    class SyncUser(FastHttpUser):
        host = "http://127.0.0.1:9"

        @task
        def predict(self):
            raise AssertionError("never run: the check logs into the stats itself")

    out = {}
    headless = Environment(user_classes=[SyncUser])
    headless.create_local_runner()
    locust_ui.install(headless, Settings(**SETTINGS))  # a worker or headless Locust: nothing, no error
    out["headless_web_ui"] = headless.web_ui is not None

    env = Environment(user_classes=[SyncUser])
    runner = env.create_local_runner()
    web_ui = env.create_web_ui("127.0.0.1", 0, delayed_start=True)  # never started: no socket
    locust_ui.install(env, Settings(**SETTINGS))
    locust_ui.install(env, Settings(**SETTINGS))  # imported twice (by the locustfile and by path): one tab
    client = web_ui.app.test_client()
    out["page_has_tab"] = b'"extended_tabs"' in client.get("/").data
    out["empty"] = client.get("/comparison").get_json()
    for ms in (95, 100, 105):
        runner.stats.log_request("POST", "sync predict", ms, 0)
    runner.stats.log_request("GET", "sync predict", 300, 0)  # one name, two methods: merged
    runner.stats.log_request("POST", "async predict", 50, 0)
    runner.stats.log_error("POST", "async predict", RuntimeError("bad score"))
    out["rows"] = client.get("/comparison").get_json()["rows"]
    out["stats"] = client.get("/stats/requests").get_json()
    csv = client.get("/comparison/csv")
    out["csv"] = [csv.headers["Content-Disposition"], csv.get_data(as_text=True)]
    runner.quit()
    print(json.dumps(out))
    """
)


def test_install_serves_the_tab_and_its_rows_from_the_runners_stats() -> None:
    settings = {
        key: value for key, value in _settings().model_dump().items() if key.startswith(("model_", "num_"))
    }
    script = f"SETTINGS = {settings!r}\n{_SHELL_CHECK}"
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["headless_web_ui"] is False
    assert out["page_has_tab"] is True  # the page hands the tab to the UI's script
    assert out["empty"] == {"rows": []}

    sync, async_ = out["rows"]
    assert sync["entry"] == "sync predict" and sync["requests"] == 4  # POST and GET merged
    assert sync["p50_ms"] == 100 and sync["p99_ms"] == 300
    assert sync["ideal_p50_ms"] == pytest.approx(90.0)
    assert async_["failures"] == 1 and async_["p50_vs_sync"] == pytest.approx(0.5)

    stats = out["stats"]
    assert {s["name"] for s in stats["stats"]} >= {"sync predict", "async predict"}  # Locust's own, intact
    [tab] = stats["extended_stats"]
    assert tab["key"] == "comparison"
    assert [r["entry"] for r in tab["data"]] == ["sync predict", "async predict"]
    assert tab["data"][1]["p50_vs_sync"] == "0.50×"

    disposition, text = out["csv"]
    assert "comparison.csv" in disposition
    assert [r["entry"] for r in csv.DictReader(io.StringIO(text))] == ["sync predict", "async predict"]
