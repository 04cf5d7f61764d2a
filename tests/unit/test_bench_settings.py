from __future__ import annotations

import pytest
from pydantic import ValidationError

from benchmark.locust_experiment import planned_seconds
from benchmark.settings import PROFILES, BenchSettings
from scoring_bench.settings import Settings


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
