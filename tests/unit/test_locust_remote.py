"""The plain decisions of driving a Locust master from elsewhere (benchmark/locust_remote.py) and of the
master the runner starts (benchmark/load.py): the /swarm form, the clock, the CSV conversion, when a phase
is done, the commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmark.analysis.phases import saturation_section
from benchmark.analysis.raw import read_requests, read_schedule
from benchmark.load import master_command, worker_command_hint
from benchmark.locust_remote import (
    HEADER,
    WORKERS_HEADER,
    class_problem,
    clock_offset,
    counted,
    csv_lines,
    missing_finals,
    schedule_document,
    shape_done,
    shift_csv,
    swarm_form,
)
from benchmark.settings import BenchSettings

STAGES = [{"users": 1, "duration_s": 2.0, "warmup_s": 0.5}, {"users": 8, "duration_s": 3.0, "warmup_s": 0.5}]


def test_the_swarm_form_carries_the_class_the_shape_the_stages_and_the_locustfile_options() -> None:
    form = swarm_form(
        "QueueScoringUser", "ramp", "queue", STAGES, {"queue_wait_ms": 0, "queue_timeout_s": 30.0}
    )
    fields = dict(form)
    assert fields["user_classes"] == "QueueScoringUser" and fields["shape_class"] == "StagesShape"
    assert json.loads(fields["stages"]) == STAGES
    assert fields["phase"] == "ramp" and fields["architecture"] == "queue"
    assert fields["queue_wait_ms"] == "0" and fields["queue_timeout_s"] == "30.0"
    assert fields["user_count"] == "1" and float(fields["spawn_rate"]) >= 1
    # no file of the master's: it would be written on the master's machine
    assert not {"requests_csv", "schedule_json"} & set(fields)


def test_the_clock_offset_comes_from_the_shortest_round_trip() -> None:
    assert clock_offset([(100.0, 110.5, 101.0)]) == pytest.approx(10.0)
    slow, fast = (100.0, 112.0, 104.0), (200.0, 209.9, 200.2)
    assert clock_offset([slow, fast]) == pytest.approx(9.8)


def test_forwarded_rows_become_requests_csv_lines_in_the_masters_clock() -> None:
    lines = csv_lines([(1000.0, "async predict", 12.3456, True), [1001.5, "queue poll", 3, False]], 0.25)
    assert lines == ["1000.250000,async predict,12.346,1\n", "1001.750000,queue poll,3.000,0\n"]


def test_shifting_a_forwarded_csv_moves_times_and_drops_what_does_not_parse() -> None:
    text = (
        HEADER
        + "1000.000000,async predict,10.000,1\n1000.5,cut\nnot-a-time,async predict,1.0,1\n"
        + "1001.000000,async predict,x,1\n"
    )
    shifted, count = shift_csv(text, HEADER, -2.5)
    assert count == 1
    assert shifted == HEADER + "997.500000,async predict,10.000,1\n"
    assert shift_csv("", HEADER, 1.0) == (HEADER, 0)
    workers, count = shift_csv(WORKERS_HEADER + "10.5,w1,42.5,50.0\n11.5,w1,,\n", WORKERS_HEADER, 1.0)
    assert (workers, count) == (WORKERS_HEADER + "11.500000,w1,42.5,50.0\n", 1)


def test_the_schedule_document_is_the_masters_steps_in_our_clock_and_parses_with_the_analysis(
    tmp_path: Path,
) -> None:
    status = {
        "phase": "ramp",
        "architecture": "async",
        "steps": [
            {"users": 1, "start": 1000.0, "end": 1002.0, "warmup_s": 0.5},
            {"users": 8, "start": 1002.0, "end": None, "warmup_s": 0.5},
        ],
    }
    document = schedule_document(status, -10.0)
    assert [step["start"] for step in document["steps"]] == [990.0, 992.0]
    assert document["steps"][1]["end"] is None and document["phase"] == "ramp"
    out = tmp_path / "locust" / "ramp"
    out.mkdir(parents=True)
    (out / "async_schedule.json").write_text(json.dumps(document))
    shifted, _ = shift_csv(HEADER + "1003.000000,async predict,40.000,1\n", HEADER, -10.0)
    (out / "async_requests.remote.csv").write_text(shifted)
    steps = read_schedule(tmp_path, "ramp", "async")
    assert steps is not None and [step.users for step in steps] == [1, 8]
    assert steps[1].end == 993.0  # a step without an end ends at its last request
    assert [request.t for request in read_requests(tmp_path, "ramp", "async")] == [993.0]


def test_a_phase_is_done_when_the_shape_ended_and_the_master_stopped() -> None:
    ended = [{"users": 1, "start": 1.0, "end": 2.0}]
    assert shape_done({"state": "stopped", "steps": ended})
    assert not shape_done({"state": "running", "steps": ended})  # users still stopping
    assert not shape_done({"state": "stopped", "steps": []})  # the run not started yet
    assert not shape_done({"state": "stopped", "steps": [{"users": 1, "start": 1.0, "end": None}]})


def test_missing_finals_are_the_connected_workers_without_a_last_batch() -> None:
    assert missing_finals({"workers": ["a", "b"], "finals": ["b"]}) == ["a"]
    assert missing_finals({"workers": ["a"], "finals": ["a", "gone"]}) == []


def test_a_master_running_other_user_classes_is_named_with_the_fix() -> None:
    assert class_problem({"user_classes": ["AsyncScoringUser"]}, "AsyncScoringUser", "http://m:8089") is None
    problem = class_problem(
        {"user_classes": ["AsyncScoringUser", "SyncScoringUser"]}, "AsyncScoringUser", "http://m:8089"
    )
    assert problem is not None and "--class-picker" in problem and "http://m:8089" in problem


def test_counted_is_locusts_aggregated_row() -> None:
    stats = {
        "stats": [{"name": "sync predict", "num_requests": 7}, {"name": "Aggregated", "num_requests": 9}]
    }
    assert counted(stats) == 9
    assert counted({"stats": []}) is None


def test_the_runners_master_listens_where_the_settings_say_with_its_web_ui_on_loopback() -> None:
    settings = BenchSettings(
        bench_profile="smoke",
        locust_expect_workers=3,
        locust_master_bind_host="0.0.0.0",
        locust_master_bind_port=6000,
    )
    argv = master_command(settings, 18089)
    assert argv[argv.index("--master-bind-host") + 1] == "0.0.0.0"
    assert argv[argv.index("--master-bind-port") + 1] == "6000"
    assert argv[argv.index("--web-host") + 1] == "127.0.0.1" and argv[argv.index("--web-port") + 1] == "18089"
    assert "--master" in argv and "--class-picker" in argv and "--headless" not in argv
    hint = worker_command_hint(settings)
    assert "--worker" in hint and "--master-port 6000" in hint and "<this machine's address>" in hint


def test_the_distribution_settings_default_to_local_locust() -> None:
    settings = BenchSettings(bench_profile="smoke")
    assert settings.locust_master_url == "" and settings.locust_expect_workers == 0
    assert settings.locust_master_bind_host == "127.0.0.1" and settings.locust_master_bind_port == 5557
    with pytest.raises(ValueError):
        BenchSettings(bench_profile="smoke", locust_expect_workers=-1)


def test_remote_workers_own_cpu_stands_for_the_load_generator_in_the_saturation_check(tmp_path: Path) -> None:
    phase_dir = tmp_path / "locust" / "ramp"
    phase_dir.mkdir(parents=True)
    schedule = {
        "phase": "ramp",
        "architecture": "async",
        "steps": [{"users": 8, "start": 100.0, "end": 110.0}],
    }
    (phase_dir / "async_schedule.json").write_text(json.dumps(schedule))
    (tmp_path / "resources").mkdir()
    rows = [f"{t},machine,50.0,\n{t},scoring-async,40.0,80.0\n" for t in (100.0, 101.0, 102.0)]
    (tmp_path / "resources" / "ramp_async.csv").write_text("t,name,cpu_percent,rss_mb\n" + "".join(rows))
    workers = "t,worker,cpu_percent,rss_mb\n99.0,w1,99.0,50.0\n105.0,w1,95.0,50.0\n"
    workers += "105.0,w2,20.0,\n111.0,w1,99.0,50\n"  # before and after the step: left out
    (phase_dir / "async_workers.csv").write_text(workers)
    saturation = saturation_section(tmp_path, "async", 2)
    assert saturation is not None
    assert saturation.load_generator_max_cpu_percent == 95.0  # inside the step only
    assert any("Locust worker on another machine" in flag and "95%" in flag for flag in saturation.flags)
    (phase_dir / "async_workers.csv").unlink()  # nothing known of the generator: no number, no flag
    saturation = saturation_section(tmp_path, "async", 2)
    assert saturation is not None and saturation.load_generator_max_cpu_percent is None
    assert not any("worker" in flag for flag in saturation.flags)
