"""The faults experiment's raw files → the summary (benchmark.analysis.faults) → the report's section and
its timelines (benchmark.report.faults, plots_faults)."""

from __future__ import annotations

import json
from pathlib import Path

from benchmark.analysis.faults import faults_section
from benchmark.faults.experiment import Events, FaultRecord, FaultsIndex
from benchmark.faults.ledger import UNKNOWN
from benchmark.faults.plan import Fault
from benchmark.faults.records import LEDGER_CSV, fault_dir
from benchmark.faults.tasks import write_ledger
from benchmark.openloop.generator import write_json, write_records
from benchmark.openloop.records import SWEEP_JSON, RequestRecord, rate_file
from benchmark.report.blocks import Image, Table, render_markdown
from benchmark.report.faults import faults_blocks, plot_name
from benchmark.report.plots_faults import plot_fault_timeline
from benchmark.settings import BenchSettings
from benchmark.summary import Faults, Summary

START = 1_800_000_000.0  # the load's start, epoch s
RATE = 20.0


def _records(
    fault_s: float, end_s: float, duration_s: float, status: str, task_ids: bool
) -> list[RequestRecord]:
    """A request every 1/RATE s: 50 ms answers, failing with ``status`` (5 ms) while the fault lasts."""
    records = []
    for i in range(int(duration_s * RATE)):
        t = i / RATE
        task_id = f"t{i}" if task_ids else ""
        if fault_s <= t < end_s:
            records.append(RequestRecord(t, t, t, t + 0.005, False, status, ""))
        else:
            records.append(
                RequestRecord(t, t, t, t + 0.05, True, "200" if not task_ids else "SUCCESS", task_id)
            )
    return records


def _write_run(
    run_dir: Path, fault: Fault, records: list[RequestRecord], ledger: dict[str, str] | None = None
) -> None:
    folder = fault_dir(run_dir, fault.architecture, fault.name)
    folder.mkdir(parents=True)
    write_records(folder / rate_file(0), records)
    entry = {"offered_rps": RATE, "duration_s": 20.0, "requests": len(records), "start": START}
    write_json(
        folder / SWEEP_JSON, {"architecture": fault.architecture, "rates": [{**entry, "file": rate_file(0)}]}
    )
    record = FaultRecord(
        fault.name,
        fault.architecture,
        fault.label,
        fault.target,
        fault.action,
        fault.timeout_s,
        fault.timeout_name,
        fault.error_limit_ms,
        RATE,
        2 * RATE,
        "probe",
        Events(START + 5.0, START + 10.0, START + 10.5),
        ["SIGKILL to model-sync", "model-sync restarted"],
    )
    if ledger is not None:
        ids = list(ledger)
        runs = {task_id: {"0": 2 if task_id == ids[0] else 1} for task_id in ids}
        write_ledger(folder / LEDGER_CSV, ids, ledger, runs)
        record.ledger = {"counted_runs": True, "waited_s": 3.0, "wait_limit_s": 90.0}
    record.save(folder)


def _faults(bench: BenchSettings, arch: str) -> dict[str, Fault]:
    from benchmark.faults.plan import faults_for

    return {f.name: f for f in faults_for(bench, arch)}


def test_a_run_folder_becomes_the_summarys_faults_and_the_reports_section(tmp_path: Path) -> None:
    bench = BenchSettings(bench_profile="quick", architectures="sync,queue")
    index = FaultsIndex(tmp_path / "faults", bench)
    sync = _faults(bench, "sync")
    _write_run(tmp_path, sync["model-kill"], _records(5.0, 10.0, 20.0, "502", False))
    index.add(sync["model-kill"], "sync/model-kill")
    index.add(
        sync["server-worker-kill"].__class__(**{**sync["server-worker-kill"].__dict__, "skipped": "why"}),
        None,
    )
    queue = _faults(bench, "queue")
    records = _records(5.0, 10.0, 20.0, "no answer: the task was lost: HTTP 503: b''", True)
    accepted = {r.task_id: "SUCCESS" for r in records if r.task_id}
    lost = next(iter(accepted))
    accepted[lost] = UNKNOWN
    _write_run(tmp_path, queue["queue-worker-kill"], records, accepted)
    index.add(queue["queue-worker-kill"], "queue/queue-worker-kill")

    faults = faults_section(tmp_path)
    assert faults is not None and faults.redis_aof == "everysec" and faults.window_s == 5
    killed, skipped, worker = faults.runs
    assert skipped.skipped == "why" and not skipped.timeline
    assert killed.fault_start_s == 5.0 and killed.fault_end_s == 10.0 and killed.ready_s == 10.5
    assert killed.errors == 100 and killed.errors_by_outcome == {"502": 100}
    assert killed.fast_failure is True and killed.error_p99_ms is not None and killed.error_p99_ms < 10
    assert killed.recovery_s == 0.0 and killed.recovered is True and killed.baseline_p50_ms is not None
    assert [s.t_s for s in killed.timeline][:2] == [-5, -4] and killed.timeline[5].errors == RATE
    assert worker.errors_by_outcome == {"503": 100} and worker.timed_errors == 100  # refused submits
    assert worker.ledger is not None
    assert worker.ledger.accepted == 300 and worker.ledger.lost == 1 and worker.ledger.unknown == 1
    assert worker.ledger.ran_twice == 1

    summary = Summary(run_id="r", experiments=["faults"], faults=faults)
    assert Summary.from_json(summary.to_json()).faults == faults

    plots = {
        plot_name(name): path
        for name in ("model-kill", "queue-worker-kill")
        if (path := plot_fault_timeline(faults, name, tmp_path / "plots")) is not None
    }
    assert sorted(p.name for p in plots.values()) == ["faults_model-kill.png", "faults_queue-worker-kill.png"]
    blocks = faults_blocks(faults, plots)
    table = next(b for b in blocks if isinstance(b, Table))
    assert [row[:2] for row in table.rows] == [["model-kill", "sync"], ["queue-worker-kill", "queue"]]
    assert table.rows[1][-1] == "1 of 300 (1) ⚠"
    text = render_markdown(blocks, tmp_path)
    assert "REDIS_AOF=everysec" in text
    assert "1 of 300 accepted tasks did not end" in text
    assert "server-worker-kill on sync: why" in text
    assert sum(isinstance(b, Image) for b in blocks) == 2


def test_slow_failures_and_no_recovery_are_flagged(tmp_path: Path) -> None:
    bench = BenchSettings(bench_profile="quick", architectures="sync")
    fault = _faults(bench, "sync")["model-freeze"]
    records = [
        RequestRecord(r.scheduled_s, r.issued_s, r.sent_s, (r.sent_s or 0) + 3.0, False, "504")
        if not r.ok or r.scheduled_s >= 10.0
        else r
        for r in _records(5.0, 10.0, 20.0, "504", False)
    ]
    _write_run(tmp_path, fault, records)
    index = FaultsIndex(tmp_path / "faults", bench)
    index.add(fault, "sync/model-freeze")
    faults = faults_section(tmp_path)
    assert faults is not None
    (run,) = faults.runs
    assert run.fast_failure is False and run.recovered is False and run.recovery_s is None
    text = render_markdown(faults_blocks(faults, {}), tmp_path)
    assert "MODEL_TIMEOUT_S + 200 ms = 2200.0 ms" in text
    assert "not within 10.0 s ⚠" in text


def test_no_section_without_the_experiment(tmp_path: Path) -> None:
    assert faults_section(tmp_path) is None
    assert faults_blocks(None, {}) == []
    assert faults_blocks(Faults(), {}) == []
    broken = tmp_path / "faults"
    broken.mkdir()
    (broken / "index.json").write_text(
        json.dumps({"runs": [{"fault": "model-kill", "architecture": "sync", "folder": "sync/model-kill"}]})
    )
    (run,) = faults_section(tmp_path).runs  # type: ignore[union-attr]
    assert run.problems == ["the run left no results"]
