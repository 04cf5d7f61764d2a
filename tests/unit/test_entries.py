"""Locust entries named by architecture (benchmark/entries.py), and the run folder's readers taking
both those names and the bare ones of folders written before."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmark.analysis.queue import queue_phase
from benchmark.analysis.raw import read_requests
from benchmark.entries import (
    END_TO_END,
    KINDS,
    POLL,
    PREDICT,
    SUBMIT,
    entry_name,
    parse_entry,
    statistics_kind,
)

HEADER = "t,name,latency_ms,ok\n"


def test_an_entry_is_the_architecture_then_the_kind() -> None:
    assert entry_name("sync", PREDICT) == "sync predict"
    assert entry_name("batched", PREDICT) == "batched predict"
    assert [entry_name("queue", kind) for kind in (SUBMIT, POLL, END_TO_END)] == [
        "queue submit",
        "queue poll",
        "queue end_to_end",
    ]


@pytest.mark.parametrize("arch", ["sync", "async", "batched", "queue"])
@pytest.mark.parametrize("kind", KINDS)
def test_parsing_an_entry_gives_back_its_architecture_and_kind(arch: str, kind: str) -> None:
    assert parse_entry(entry_name(arch, kind)) == (arch, kind)


def test_a_bare_legacy_name_has_no_architecture() -> None:
    assert parse_entry("predict") == (None, "predict")
    assert parse_entry("end_to_end") == (None, "end_to_end")
    assert parse_entry(" poll ") == (None, "poll")
    assert parse_entry("") == (None, "")


def test_the_statistics_are_of_predict_and_of_the_queues_end_to_end() -> None:
    assert statistics_kind("sync") == PREDICT and statistics_kind("batched") == PREDICT
    assert statistics_kind("queue") == END_TO_END


def _write(folder: Path, name: str, rows: list[tuple[float, str, float, int]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(HEADER + "".join(f"{t},{n},{ms},{ok}\n" for t, n, ms, ok in rows))


def test_requests_are_read_by_kind_under_either_name(tmp_path: Path) -> None:
    folder = tmp_path / "locust" / "sustained"
    _write(folder, "queue_requests.1.csv", [(1.0, "queue submit", 3.0, 1), (2.0, "queue poll", 100.0, 1)])
    _write(folder, "queue_requests.2.csv", [(1.5, "submit", 4.0, 1), (2.5, "end_to_end", 130.0, 0)])
    _write(folder, "queue_requests.3.csv", [(3.0, "queue end_to_end", 120.0, 1), (3.5, "poll", 90.0, 1)])
    every = read_requests(tmp_path, "sustained", "queue", "*")
    assert [(r.t, r.name) for r in every] == [
        (1.0, SUBMIT),
        (1.5, SUBMIT),
        (2.0, POLL),
        (2.5, END_TO_END),
        (3.0, END_TO_END),
        (3.5, POLL),
    ]
    assert [r.t for r in read_requests(tmp_path, "sustained", "queue")] == [2.5, 3.0]  # end_to_end
    assert [r.t for r in read_requests(tmp_path, "sustained", "queue", POLL)] == [2.0, 3.5]
    assert [r.t for r in read_requests(tmp_path, "sustained", "queue", "queue poll")] == [2.0, 3.5]
    assert [r.ok for r in read_requests(tmp_path, "sustained", "queue")] == [False, True]


def test_another_architectures_rows_in_the_same_file_do_not_count(tmp_path: Path) -> None:
    """Several user classes in one Locust (the web UI) write one file: only this architecture's rows."""
    rows = [(1.0, "sync predict", 90.0, 1), (1.1, "async predict", 45.0, 1), (1.2, "predict", 50.0, 1)]
    _write(tmp_path / "locust" / "ramp", "async_requests.csv", rows)
    assert [r.latency_ms for r in read_requests(tmp_path, "ramp", "async")] == [45.0, 50.0]
    assert [r.latency_ms for r in read_requests(tmp_path, "ramp", "async", "*")] == [45.0, 50.0]
    assert read_requests(tmp_path, "ramp", "async", "queue poll") == []


def test_the_queues_phase_counts_submits_and_polls_under_either_name(tmp_path: Path) -> None:
    folder = tmp_path / "locust" / "sustained"
    (folder).mkdir(parents=True)
    (folder / "queue_schedule.json").write_text(
        '{"steps": [{"users": 1, "start": 0.0, "end": 10.0, "warmup_s": 0.0}]}'
    )
    _write(
        folder,
        "queue_requests.csv",
        [
            (1.0, "queue submit", 3.0, 1),
            (1.2, "queue poll", 100.0, 1),
            (1.3, "queue end_to_end", 130.0, 1),
            (2.0, "submit", 5.0, 1),
            (2.2, "poll", 100.0, 1),
            (2.3, "poll", 100.0, 1),
            (2.4, "end_to_end", 140.0, 1),
        ],
    )
    phase = queue_phase(tmp_path, "sustained")
    assert phase is not None
    assert phase.tasks == 2 and phase.submit.requests == 2 and phase.poll.requests == 3
    assert phase.polls_per_task == pytest.approx(1.5)
    assert phase.submit.p50_ms == pytest.approx(4.0)
