"""The control comparison: when a run measures it, its raw files → the summary's section, the report's
sentences against the targets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmark.analysis.control import control_section
from benchmark.control import (
    CONTROL_DIR,
    CONTROL_JSON,
    CPU_JSON,
    SEQUENTIAL_CSV,
    order,
    rep_dir,
    with_control,
)
from benchmark.report.blocks import Table
from benchmark.report.control import control_blocks, cpu_sentence, p50_sentence, ratio_sentence
from benchmark.settings import BenchSettings
from benchmark.summary import Control, Summary

WRK_OUTPUT = """Running 5s test @ http://127.0.0.1:8001/api/v1/ml/async/predict
  1 threads and 64 connections
  {requests} requests in 5.00s, 2.50MB read
Requests/sec:   {rps}
"""


@pytest.mark.parametrize(
    ("profile", "values", "runs"),
    [
        ("quick", {}, True),
        ("full", {}, True),
        ("smoke", {}, False),
        ("soak", {}, False),
        ("quick", {"architectures": "sync,queue"}, False),
        ("quick", {"experiments": "attribution"}, False),
        ("quick", {"experiments": "timeit", "architectures": "async"}, True),
        ("quick", {"bench_control": False}, False),
        ("smoke", {"bench_control": True}, True),
    ],
)
def test_the_control_runs_when_asked_and_async_is_measured(
    profile: str, values: dict[str, object], runs: bool
) -> None:
    s = BenchSettings(bench_profile=profile, **values)
    assert s.runs_control() is runs
    assert with_control(s.stack_settings(), s).minimal_control is runs
    assert s.stack_settings().minimal_control is False  # every other stack of the run: no control


def test_the_order_swaps_every_repetition() -> None:
    assert order(1) == ["product", "control"] and order(2) == ["control", "product"]


def write_rep(run_dir: Path, handler: str, rep: int, rps: float, latencies: list[float]) -> None:
    folder = rep_dir(run_dir, handler, rep)
    folder.mkdir(parents=True)
    (folder / "wrk.txt").write_text(WRK_OUTPUT.format(requests=int(rps * 5), rps=rps))
    (folder / CPU_JSON).write_text(json.dumps({"cpu_s": rps * 5 / 1000}))  # 1 ms a request
    rows = ["i,latency_ms,status"] + [f"{i},{ms},200" for i, ms in enumerate(latencies)] + ["99,1.0,500"]
    (folder / SEQUENTIAL_CSV).write_text("\n".join(rows) + "\n")


def test_the_section_from_raw_files(tmp_path: Path) -> None:
    (tmp_path / CONTROL_DIR).mkdir()
    meta = {"users": 64, "duration_s": 5, "requests": 3, "repeats": 3, "tool": "wrk"}
    (tmp_path / CONTROL_DIR / CONTROL_JSON).write_text(json.dumps(meta))
    for rep, (product, control) in enumerate([(900, 1000), (1000, 1000), (1100, 1000)], start=1):
        write_rep(tmp_path, "product", rep, product, [50.0 + rep, 51.0 + rep, 52.0 + rep])
        write_rep(tmp_path, "control", rep, control, [50.0 + rep, 50.5 + rep, 51.0 + rep])
    section = control_section(tmp_path)
    assert section is not None
    assert [r.ratio for r in section.reps] == pytest.approx([0.9, 1.0, 1.1])
    assert (section.ratio_median, section.ratio_min, section.ratio_max) == pytest.approx((1.0, 0.9, 1.1))
    assert [r.p50_diff_ms for r in section.reps] == pytest.approx([0.5, 0.5, 0.5])  # the 500 left out
    assert section.p50_diff_ms == pytest.approx(53.0 - 52.5)  # pooled: 9 answers each
    assert section.meets_ratio is True and section.meets_p50 is True  # at the targets: met
    assert section.reps[1].first == "control" and section.reps[0].product_errors == 0
    assert section.product_cpu_ms == pytest.approx(1.0) and section.control_cpu_ms == pytest.approx(1.0)
    assert Summary.from_json(Summary(run_id="x", control=section).to_json()).control == section


def test_no_files_no_section(tmp_path: Path) -> None:
    assert control_section(tmp_path) is None
    assert control_blocks(None) == []


def test_the_sentences_state_the_ratio_and_the_difference_against_the_targets() -> None:
    control = Control(
        users=64,
        duration_s=5,
        requests=200,
        tool="wrk",
        ratio_median=0.93,
        ratio_min=0.9,
        ratio_max=0.97,
        p50_diff_ms=0.31,
        p50_diff_min_ms=0.1,
        p50_diff_max_ms=0.6,
        meets_ratio=False,
        meets_p50=True,
    )
    assert ratio_sentence(control).startswith(
        "At 64 connections the async handler served 0.93× the control's"
    )
    assert "it misses the target of at least 1.0×" in ratio_sentence(control)
    assert "(n=0)" in ratio_sentence(control)
    text = p50_sentence(control)
    assert "0.31 ms above the control's" in text and "it meets the target of at most 0.5 ms above" in text
    below = control.model_copy(update={"p50_diff_ms": -0.2})
    assert "0.20 ms below" in p50_sentence(below)
    assert cpu_sentence(control) is None
    costly = control.model_copy(update={"product_cpu_ms": 0.95, "control_cpu_ms": 0.9})
    assert "0.950 ms of CPU per request against the control's 0.900 ms" in str(cpu_sentence(costly))
    assert "50 µs more" in str(cpu_sentence(costly))
    empty = Control()
    assert "not measured" in ratio_sentence(empty) and "not measured" in p50_sentence(empty)
    assert not any(isinstance(block, Table) for block in control_blocks(control))


def test_sequential_requests_alternate_between_the_handlers(tmp_path: Path) -> None:
    """Both handlers' sequential requests are interleaved request by request (no handler always measured
    after the other), each to its own file; a warm-up writes nothing."""
    import csv
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from benchmark.control import sequential

    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            seen.append(self.path)
            self.send_response(200 if self.path == "/product" else 201)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        urls = {"control": f"{base}/control", "product": f"{base}/product"}
        paths = {name: tmp_path / f"{name}.csv" for name in urls}
        sequential(urls, b"{}", 3, paths)
        sequential(urls, b"{}", 1, {})
    finally:
        server.shutdown()
        server.server_close()
    assert seen == ["/control", "/product"] * 4
    for name, status in (("control", "201"), ("product", "200")):
        with open(paths[name], newline="") as f:
            rows = list(csv.DictReader(f))
        assert [row["i"] for row in rows] == ["0", "1", "2"]
        assert all(row["status"] == status and float(row["latency_ms"]) > 0 for row in rows)
