"""A service's processes and their CPU and memory from /proc (scoring_bench/service/process_tree.py),
on a fake /proc: the root found by the environment, the tree, reaped children, the floor."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from scoring_bench.core.settings import Settings
from scoring_bench.service.metrics import PROCESS_NAMES, ServiceProcessCollector, render
from scoring_bench.service.process_tree import (
    PAGE_SIZE,
    TICKS,
    Floor,
    ProcessTree,
    find_root,
    parse_stat,
)

ENV = "PROMETHEUS_MULTIPROC_DIR"


def stat_line(
    pid: int, ppid: int, utime: int, stime: int = 0, cutime: int = 0, start: int = 100, rss: int = 10
) -> str:
    # fields 3..: state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
    #             utime stime cutime cstime priority nice threads itrealvalue starttime vsize rss
    fields = [
        "S",
        ppid,
        pid,
        pid,
        0,
        -1,
        0,
        0,
        0,
        0,
        0,
        utime,
        stime,
        cutime,
        0,
        20,
        0,
        1,
        0,
        start,
        1000,
        rss,
    ]
    return f"{pid} (py thon) x) " + " ".join(map(str, fields)) + "\n"


def add(proc: Path, pid: int, ppid: int, utime: int, env: str | None = "svc", **kw: int) -> None:
    folder = proc / str(pid)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "stat").write_text(stat_line(pid, ppid, utime, **kw))
    environ = [b"HOME=/x"] + ([f"{ENV}={env}".encode()] if env is not None else [])
    (folder / "environ").write_bytes(b"\0".join(environ) + b"\0")


def fake_proc(tmp_path: Path) -> Path:
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "stat").write_text("cpu 1 2 3\nbtime 1000\n")
    add(proc, 1, 0, 5, env=None)  # init
    add(proc, 10, 1, 7, env=None)  # the supervisor: no variable
    add(proc, 20, 10, 100, cutime=40, start=500)  # the service's master
    add(proc, 21, 20, 30)  # a worker
    add(proc, 22, 20, 20, stime=5)  # another
    add(proc, 23, 22, 1)  # a worker's child
    add(proc, 30, 10, 999, env="other")  # another service
    add(proc, 31, 1, 999)  # same variable, not in the tree
    return proc


def test_stat_fields_are_counted_from_the_last_parenthesis() -> None:
    stat = parse_stat(7, stat_line(7, 3, 11, stime=2, cutime=4, start=99, rss=5).encode())
    assert (stat.ppid, stat.cpu_ticks, stat.start_ticks, stat.rss_pages) == (3, 17, 99, 5)


def test_the_root_is_the_topmost_ancestor_with_the_same_variable(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path)
    assert find_root(23, "svc", ENV, proc) == 20
    assert find_root(21, "svc", ENV, proc) == 20
    assert find_root(30, "other", ENV, proc) == 30
    assert find_root(23, None, ENV, proc) == 23  # no variable: the process itself


def test_totals_sum_the_tree_with_its_reaped_children(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path)
    totals = ProcessTree(20, proc).totals()
    assert totals.processes == 4
    assert totals.cpu_seconds == (100 + 40 + 30 + 20 + 5 + 1) / TICKS
    assert totals.rss_bytes == 4 * 10 * PAGE_SIZE
    assert totals.start_time == 1000 + 500 / TICKS


def test_a_reaped_worker_moves_its_cpu_to_the_parent(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path)
    tree = ProcessTree(20, proc)
    before = tree.totals()
    for name in ("stat", "environ"):
        (proc / "21" / name).unlink()
    (proc / "21").rmdir()
    add(proc, 20, 10, 100, cutime=40 + 30, start=500)  # the master waited for it
    add(proc, 24, 20, 0)  # and started a new one
    after = tree.totals()
    assert after.processes == 4 and after.cpu_seconds == before.cpu_seconds


def test_a_new_main_process_under_the_same_number_is_not_the_service(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path)
    tree = ProcessTree(20, proc)
    assert tree.totals().processes == 4
    add(proc, 20, 10, 1, start=900)
    assert tree.totals().processes == 0


def test_the_floor_holds_the_highest_total_across_processes(tmp_path: Path) -> None:
    first, second = Floor(tmp_path), Floor(tmp_path)  # two processes of one service share the folder
    assert first.apply(10.0, 1.5) == 10.0
    assert second.apply(9.5, 1.5) == 10.0  # a child missed while being reaped: no fall
    assert second.apply(12.0, 1.5) == 12.0
    assert first.apply(0.3, 2.5) == 0.3  # a new main process: a new counter
    alone = Floor(None)
    assert (alone.apply(3.0, 1.0), alone.apply(2.0, 1.0)) == (3.0, 3.0)


def test_the_collector_reports_this_process_as_a_service() -> None:
    collector = ServiceProcessCollector("unit")
    families = {m.name: m for m in collector.collect()}
    assert set(families) == {
        "process_cpu_seconds",
        "process_resident_memory_bytes",
        "process_start_time_seconds",
        "service_processes",
    }
    sample = families["process_cpu_seconds"].samples[0]
    assert sample.labels == {"service": "unit"} and sample.value > 0
    assert families["service_processes"].samples[0].value >= 1


def test_a_scrape_for_process_names_renders_only_them() -> None:
    from scoring_bench.service import metrics

    metrics.install_process_collector("unit")
    text = render(PROCESS_NAMES).decode()
    assert 'process_cpu_seconds_total{service="unit"}' in text
    assert "http_request" not in text and "python_gc" not in text
    # the whole render: the service's process metrics once (the default registry's own are left out)
    assert render().decode().count("# TYPE process_cpu_seconds_total") == 1


def _get(app: Any, path: str) -> tuple[int, bytes]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app({"type": "http", "path": path, "method": "GET"}, receive, send))
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


def test_the_minimal_control_serves_only_the_process_metrics_unless_disabled() -> None:
    from api_scoring_minimal.app import create_app

    status, body = _get(create_app(Settings()), "/metrics")
    assert status == 200 and b'process_cpu_seconds_total{service="scoring-minimal"}' in body
    assert b"http_request" not in body
    assert _get(create_app(Settings(metrics_enabled=False)), "/metrics")[0] == 404
