"""The soak's decisions (windows, slope, change, verdicts), its analysis of a synthetic run folder, its
report section and plots, its settings and planned duration."""

from __future__ import annotations

import csv
import json
import socket
import time
from pathlib import Path

import psutil
import pytest

from benchmark.analysis.series import build_series
from benchmark.analysis.soak import read_process_samples, soak_section, soak_series
from benchmark.cli import soak_table
from benchmark.duration import planned_duration_s, planned_soak_s
from benchmark.openloop.records import COLUMNS as REQUEST_COLUMNS
from benchmark.report import report_blocks
from benchmark.report.blocks import Heading, Paragraph, Table
from benchmark.report.plots_soak import plot_soak, plot_soak_p99
from benchmark.report.soak import SOAK_TITLE, soak_blocks
from benchmark.settings import BenchSettings
from benchmark.soak.growth import (
    change_pct,
    count_flat,
    judge,
    rss_steady,
    slope_per_minute,
    soak_windows,
    verdict,
)
from benchmark.soak.records import PLAN_JSON, PROCESSES_CSV, soak_dir, soak_resources
from benchmark.soak.sampler import COLUMNS, ProcessSampler, connections
from benchmark.summary import ArchitectureSummary, Soak, Summary

WINDOWS = soak_windows(600, 60, 60)


# --------------------------------------------------------------------------- the rules


def test_the_windows_are_the_minute_after_the_warmup_and_the_last_minute() -> None:
    assert (WINDOWS.first, WINDOWS.last) == ((60, 120), (540, 600))
    short = soak_windows(6, 10, 60)  # the warm-up at most half, each window at most half of the rest
    assert (short.warmup_s, short.window_s, short.first, short.last) == (3, 1.5, (3, 4.5), (4.5, 6))
    with pytest.raises(ValueError):
        soak_windows(0, 1, 1)


def test_the_slope_is_per_minute_and_needs_two_times() -> None:
    assert slope_per_minute([(t, 100 + t / 10) for t in range(0, 100, 5)]) == pytest.approx(6.0)
    assert slope_per_minute([(5.0, 1.0), (5.0, 2.0)]) is None
    assert slope_per_minute([]) is None


def test_rss_holds_below_ten_percent_growth() -> None:
    assert change_pct(100, 110) == pytest.approx(10.0) and change_pct(0, 5) is None
    assert rss_steady(100, 109.9) is True
    assert rss_steady(100, 110) is False
    assert rss_steady(None, 110) is None


def test_a_count_is_flat_up_to_the_first_minutes_maximum_plus_the_slack() -> None:
    assert count_flat([40, 42, 41], [44, 46, 45]) is True  # 42 + 10 % = 46.2
    assert count_flat([40, 42, 41], [47, 47, 46]) is False
    assert count_flat([5, 5], [7, 7]) is True  # small counts: a slack of 2
    assert count_flat([5, 5], [8, 8]) is False
    assert count_flat([30, 60, 60], [59]) is True  # at the first half's peak: flat, however low its median
    assert count_flat([], [3]) is None


def test_a_count_that_steps_up_once_and_stays_is_flat_one_still_climbing_is_not() -> None:
    step = [(t, 170.0 if t < 150 else 224.0) for t in range(0, 601, 5)]  # a pool filling at 2.5 min
    assert judge(step, WINDOWS, "count").steady is True
    late_step = [(t, 170.0 if t < 400 else 224.0) for t in range(0, 601, 5)]  # still rising in the 2nd half
    assert judge(late_step, WINDOWS, "count").steady is False
    assert WINDOWS.first_half == (60, 330)


def test_judge_tells_a_steady_metric_from_a_growing_one() -> None:
    steady = judge([(t, 100 + (t % 20) / 10) for t in range(0, 601, 5)], WINDOWS, "rss")
    assert steady.steady is True and abs(steady.change_pct or 0) < 2
    leak = judge([(t, 100 + t / 20) for t in range(0, 601, 5)], WINDOWS, "rss")  # +3 MB/min
    assert leak.steady is False and leak.slope_per_min == pytest.approx(3.0)
    assert leak.first_median == pytest.approx(104.375) and leak.last_median == pytest.approx(128.5)
    fds = judge([(t, 20 + t // 30) for t in range(0, 601, 5)], WINDOWS, "count")
    assert fds.steady is False and fds.first_half_max == 30 and fds.last_median == 39
    warmup_only = judge([(t, 1.0) for t in range(0, 60, 5)], WINDOWS, "count")
    assert warmup_only.steady is None and warmup_only.first_median is None
    with pytest.raises(ValueError):
        judge([], WINDOWS, "bytes")


def test_a_process_verdict_is_false_when_anything_grew() -> None:
    assert verdict(True, True) is True
    assert verdict(True, False, None) is False
    assert verdict(True, None) is None
    assert verdict() is None


# --------------------------------------------------------------------------- a synthetic run


def write_soak(run_dir: Path, arch: str = "sync", duration: float = 600.0) -> None:
    """A soak of ``arch``: a steady master, a worker leaking memory and descriptors, a steady worker, a
    model worker that exits half-way, Redis steady, and a service off the path (scoring-async)."""
    folder = soak_dir(run_dir, arch)
    folder.mkdir(parents=True)
    start = 1_800_000_000.0
    plan = {
        "architecture": arch,
        "rate_rps": 10.0,
        "fraction": 0.7,
        "capacity_rps": 14.3,
        "capacity_source": "probe",
        "duration_s": duration,
        "warmup_s": 60,
        "window_s": 60,
        "sample_interval_s": 5,
    }
    (folder / PLAN_JSON).write_text(json.dumps(plan))
    rate = {
        "offered_rps": 10.0,
        "duration_s": duration,
        "requests": 6000,
        "start": start,
        "file": "rate-0.csv",
    }
    (folder / "sweep.json").write_text(json.dumps({"architecture": arch, "rates": [rate]}))
    with (folder / "rate-0.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(REQUEST_COLUMNS)
        for i in range(6000):
            t = i / 10
            latency = 0.1 if t < 300 else 0.2  # the tail doubles half-way
            writer.writerow([f"{t:.3f}", f"{t:.3f}", f"{t:.3f}", f"{t + latency:.3f}", "1", "200"])
    with (folder / PROCESSES_CSV).open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for k in range(-2, 122):
            t = k * 5
            rows = [
                ("scoring-sync", 10, 1, "gunicorn", 40.0, 5, 1, 0),
                ("scoring-sync", 12, 10, "gunicorn", 50 + t / 20, 30 + t // 20, 16, 20),  # leaks
                ("scoring-sync", 11, 10, "gunicorn", 50.0 + (k % 3) / 10, 30, 16, 20),
                ("redis", 5, 1, "redis-server", 12.0, 30, 6, 24),
                ("scoring-async", 20, 1, "python", 60.0 + t, 40, 6, 10),  # off the path: not judged
            ]
            if t <= 300:
                rows.append(("model-sync", 31, 30, "gunicorn", 45.0, 20, 1, 8))
            for service, pid, ppid, name, rss, fds, threads, conns in rows:
                writer.writerow([f"{start + t:.3f}", service, pid, ppid, name, rss, fds, threads, conns])
        writer.writerow([f"{start + 700:.3f}", "redis", "5"])  # a line cut short
    resources = soak_resources(run_dir, arch)
    resources.parent.mkdir(parents=True, exist_ok=True)
    with resources.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["t", "name", "cpu_percent", "rss_mb"])
        for k in range(1, 121):
            t = k * 5
            others = 40.0 if 60 < t <= 120 else 5.0  # another job in the first minute
            for name, cpu in (("openloop", 20.0), ("machine", 150.0), ("others", others)):
                writer.writerow([f"{start + t:.3f}", name, cpu, ""])


def test_the_analysis_judges_every_process_of_the_path(tmp_path: Path) -> None:
    write_soak(tmp_path)
    assert len(read_process_samples(soak_dir(tmp_path, "sync") / PROCESSES_CSV)) == 124 * 5 + 63
    soak = soak_section(tmp_path, None)
    assert soak is not None and list(soak.architectures) == ["sync"]
    data = soak.architectures["sync"]
    assert (data.rate_rps, data.fraction, data.capacity_source) == (10.0, 0.7, "probe")
    assert (data.duration_s, data.warmup_s, data.window_s) == (600.0, 60.0, 60.0)
    labels = [(p.service, p.role, p.pid) for p in data.processes]
    assert labels == [
        ("scoring-sync", "main", 10),
        ("scoring-sync", "worker", 11),
        ("scoring-sync", "worker", 12),
        ("model-sync", "main", 31),  # its parent is not sampled: the service's own process
        ("redis", "main", 5),
    ]
    master, steady, leaking, model, redis = data.processes
    assert master.steady is True and steady.steady is True and redis.steady is True
    assert leaking.steady is False and leaking.rss_mb.steady is False and leaking.fds.steady is False
    assert leaking.threads.steady is True and leaking.connections.steady is True
    assert leaking.rss_mb.slope_per_min == pytest.approx(3.0)
    assert model.steady is None and model.note == "exited during the soak, after 300 s"
    assert data.steady is False
    assert data.load is not None and data.load.requests == 6000 and data.load.errors == 0
    assert data.first_window is not None and data.first_window.p99_ms == pytest.approx(100, abs=1)
    assert data.last_window is not None and data.last_window.p99_ms == pytest.approx(200, abs=1)
    assert data.p99_change_pct == pytest.approx(100, abs=2)
    assert len(data.minutes) == 10 and data.minutes[0].requests == 600
    assert data.first_window.others_cpu_percent == 40.0 and data.last_window.others_cpu_percent == 5.0
    assert data.minutes[3].machine_cpu_percent == 150.0 and data.load.generator_cpu_percent == 20.0
    assert Summary.model_validate(Summary(run_id="x", soak=soak).model_dump(mode="json")).soak == soak


def test_no_soak_files_no_section(tmp_path: Path) -> None:
    assert soak_section(tmp_path, None) is None
    assert soak_series(tmp_path, ["sync"]) == {}


def test_the_section_says_the_rules_and_flags_what_grew(tmp_path: Path) -> None:
    write_soak(tmp_path)
    soak = soak_section(tmp_path, None)
    blocks = soak_blocks(soak, {})
    assert blocks[0] == Heading(2, SOAK_TITLE)
    text = " ".join(block.text for block in blocks if isinstance(block, Paragraph))
    assert "less than 10 %" in text and "plus 2 or 10 %" in text and "60 s after it" in text
    assert "⚠ sync: 1 of 5 processes grew — scoring-sync worker (pid 12): RSS +" in text
    assert "descriptors 34 → 58 (the first half's highest: 46)" in text
    assert "Not judged: model-sync main (pid 31) (exited during the soak, after 300 s)." in text
    assert "p99 100.0 ms in the first minute, 200.1 ms in the last (+100 %)" in text
    assert "⚠ Processes outside the run took 40 % of a core in the first minute" in text
    table = next(block for block in blocks if isinstance(block, Table))
    verdicts = {row[1]: row[-1] for row in table.rows}
    assert verdicts["scoring-sync worker (pid 12)"] == "GREW: RSS, descriptors"
    assert verdicts["redis main (pid 5)"] == "steady"
    assert soak_blocks(None, {}) == [] and soak_blocks(Soak(), {}) == []


def test_a_report_of_the_soak_alone_leaves_out_the_sections_it_did_not_measure(tmp_path: Path) -> None:
    write_soak(tmp_path)
    soak = soak_section(tmp_path, None)
    archs = {"sync": ArchitectureSummary()}
    alone = Summary(run_id="r", experiments=["soak"], architectures=archs, soak=soak)
    headings = [block.text for block in report_blocks(alone, {}) if isinstance(block, Heading)]
    assert headings == [
        "scoring-bench report: run r",
        "Verification before any load",
        SOAK_TITLE,
        "Machine",
    ]
    with_locust = Summary(run_id="r", experiments=["locust", "soak"], architectures=archs, soak=soak)
    headings = [block.text for block in report_blocks(with_locust, {}) if isinstance(block, Heading)]
    assert "Headline" in headings and "Latency at one user" in headings and SOAK_TITLE in headings


def test_the_console_prints_the_verdicts_of_a_soak(tmp_path: Path) -> None:
    write_soak(tmp_path)
    table = soak_table(Summary(run_id="r", experiments=["soak"], soak=soak_section(tmp_path, None)))
    assert table is not None
    verdicts = list(table.columns[3].cells)
    assert verdicts == ["steady", "steady", "GREW: RSS, descriptors", "not judged", "steady"]
    assert soak_table(Summary(run_id="r")) is None


def test_the_plots_are_drawn_from_the_series_and_the_summary(tmp_path: Path) -> None:
    write_soak(tmp_path)
    series = build_series(tmp_path, ["sync"]).soak
    assert [p.label for p in series["sync"].processes][:2] == [
        "scoring-sync main 10",
        "scoring-sync worker 11",
    ]
    assert plot_soak(series, tmp_path / "plots") == tmp_path / "plots" / "soak.png"
    assert (
        plot_soak_p99(soak_section(tmp_path, None), tmp_path / "plots") == tmp_path / "plots" / "soak_p99.png"
    )
    assert plot_soak({}, tmp_path / "none") is None and plot_soak_p99(None, tmp_path / "none") is None


# --------------------------------------------------------------------------- settings and plan


def test_the_soak_profile_runs_the_soak_alone_and_plans_its_time() -> None:
    soak = BenchSettings(bench_profile="soak")
    assert soak.experiments == ["soak"] and soak.soak_s == 600 and soak.soak_fraction == 0.7
    assert "soak" not in BenchSettings(bench_profile="quick").experiments
    assert BenchSettings(bench_profile="soak", experiments=["locust", "soak"]).experiments == [
        "locust",
        "soak",
    ]
    assert planned_duration_s(soak) > len(soak.architectures) * soak.soak_s
    assert planned_soak_s(BenchSettings(bench_profile="soak", soak_rate=50)) < planned_soak_s(soak)


# --------------------------------------------------------------------------- the sampler


def test_the_sampler_reads_each_process_its_descriptors_and_connections(tmp_path: Path) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.create_connection(server.getsockname()) as client:
            accepted, _ = server.accept()
            with accepted:
                me = psutil.Process()
                assert connections(me) >= 2  # both ends of the connection; the listening socket is not one
                path = tmp_path / "processes.csv"
                with ProcessSampler(path, lambda: {"bench": [me.pid]}, interval_s=0.05):
                    time.sleep(0.2)
                assert client.fileno() >= 0
    rows = list(csv.DictReader(path.open()))
    assert rows and tuple(rows[0]) == COLUMNS
    mine = [row for row in rows if row["pid"] == str(me.pid)]
    assert mine and all(row["service"] == "bench" for row in mine)
    assert int(mine[0]["fds"]) > 0 and int(mine[0]["threads"]) >= 2 and int(mine[0]["connections"]) >= 2
    assert float(mine[0]["rss_mb"]) > 0
