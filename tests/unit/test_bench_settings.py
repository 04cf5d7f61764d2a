from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from benchmark.load import auto_workers, locust_commands
from benchmark.locust_experiment import WorkerPlan, planned_seconds
from benchmark.settings import PROFILES, BenchSettings
from scoring_bench.core.settings import Settings


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_each_profile_fills_every_knob(profile: str) -> None:
    s = BenchSettings(bench_profile=profile)
    for key, value in PROFILES[profile].items():
        assert getattr(s, key) == value


def test_the_environment_overrides_the_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BENCH_PROFILE", "smoke")
    monkeypatch.setenv("BENCH_RAMP_STEP_S", "9")
    monkeypatch.setenv("BENCH_RAMP_USERS", "1,2,3")
    monkeypatch.setenv("EXPERIMENTS", "locust")
    monkeypatch.setenv("ARCHITECTURES", "async")
    s = BenchSettings()
    assert s.bench_ramp_step_s == 9 and s.bench_ramp_users == [1, 2, 3]
    assert s.experiments == ["locust"] and s.architectures == ["async"]
    assert s.bench_timeit_requests == PROFILES["smoke"]["bench_timeit_requests"]


def test_bad_values_are_refused() -> None:
    with pytest.raises(ValidationError):
        BenchSettings(bench_profile="huge")
    with pytest.raises(ValidationError):
        BenchSettings(experiments="profile,dance")


def test_stack_settings_are_the_stack_part() -> None:
    s = BenchSettings(num_models=3, bench_profile="smoke")
    stack = s.stack_settings()
    assert type(stack) is Settings and stack.num_models == 3
    assert "bench_profile" not in stack.model_dump()


def test_quick_profile_plans_under_ten_minutes_of_load() -> None:
    s = BenchSettings(bench_profile="quick")
    per_arch = sum(planned_seconds(s).values()) + s.bench_timeit_requests * 0.1
    assert per_arch * len(s.architectures) < 8 * 60


def test_the_queue_and_the_burst_are_in_by_default() -> None:
    s = BenchSettings(bench_profile="smoke")
    assert s.architectures == ["sync", "async", "batched", "queue"] and "burst" in s.experiments
    assert s.bench_burst_tasks == 100 and s.bench_burst_concurrencies == [8, 64]
    assert len(BenchSettings(bench_profile="quick").bench_burst_concurrencies) >= 2
    assert s.bench_queue_wait_ms == 1000 and s.bench_queue_poll_wait_ms == 1000


def test_locust_workers_is_auto_by_default_or_a_number(monkeypatch: pytest.MonkeyPatch) -> None:
    assert BenchSettings().locust_workers == "auto"
    monkeypatch.setenv("LOCUST_WORKERS", "3")
    assert BenchSettings().locust_workers == 3
    monkeypatch.setenv("LOCUST_WORKERS", "AUTO")
    assert BenchSettings().locust_workers == "auto"
    monkeypatch.setenv("BENCH_BURST_CONCURRENCIES", "4,16")
    assert BenchSettings().bench_burst_concurrencies == [4, 16]
    for bad in ("-1", "many"):
        monkeypatch.setenv("LOCUST_WORKERS", bad)
        with pytest.raises(ValidationError):
            BenchSettings()


@pytest.mark.parametrize(
    ("previous", "peak", "cores", "expected"),
    [
        (None, None, 2, 0),  # the 1-user phase: one standalone process
        (None, 99.0, 8, 0),
        (0, 40.0, 2, 1),  # after it: a master and one worker
        (0, None, 2, 1),  # no samples: one worker
        (0, 95.0, 2, 2),  # the previous generator ran hot: one more
        (1, 80.0, 2, 1),  # 80% is not above 80%
        (1, 81.0, 2, 2),
        (2, 95.0, 2, 2),  # never more than the cores
        (2, 30.0, 4, 2),  # a cool phase keeps what the previous one had
        (3, 90.0, 8, 4),
    ],
)
def test_auto_workers(previous: int | None, peak: float | None, cores: int, expected: int) -> None:
    assert auto_workers(previous, peak, cores) == expected


def test_worker_plan_reads_the_previous_phase(tmp_path: Path) -> None:
    resources = tmp_path / "resources"
    resources.mkdir()
    (resources / "one_user_queue.csv").write_text("t,name,cpu_percent,rss_mb\n1,locust,30,1\n1,redis,99,1\n")
    (resources / "ramp_queue.csv").write_text(
        "t,name,cpu_percent,rss_mb\n1,locust,5,1\n2,locust-worker-1,93,1\n"
    )
    plan = WorkerPlan(BenchSettings(bench_profile="smoke"), tmp_path, "queue")
    plan.cores = 4
    assert [plan.next(phase) for phase in ("one_user", "ramp", "sustained")] == [0, 1, 2]
    fixed = WorkerPlan(BenchSettings(bench_profile="smoke", locust_workers=3), tmp_path, "queue")
    assert [fixed.next(phase) for phase in ("one_user", "ramp")] == [3, 3]


def test_locust_commands_start_a_master_and_its_workers(tmp_path: Path) -> None:
    s = BenchSettings(bench_profile="smoke")
    assert len(locust_commands(s, "queue", tmp_path)) == 1  # auto, outside a planned phase: standalone
    commands = locust_commands(s, "queue", tmp_path, 2)
    assert len(commands) == 3 and "--master" in commands[0] and commands[0][-1] == "QueueScoringUser"
    assert all("--worker" in argv for argv in commands[1:])
