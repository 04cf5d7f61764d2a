"""Saturation flags are judged over the measured windows only (benchmark.analysis.phases)."""

from __future__ import annotations

import json
from pathlib import Path

from benchmark.analysis.phases import OTHERS_PERCENT, saturation_section, within_windows
from benchmark.analysis.raw import Sample


def _run(
    tmp_path: Path, locust_cpu: dict[float, float], others_cpu: dict[float, float] | None = None
) -> Path:
    """A 1-user phase measured from t=11 to t=20 (start 10, 1 s warm-up); Locust's CPU at the given times."""
    schedule = tmp_path / "locust" / "one_user" / "sync_schedule.json"
    schedule.parent.mkdir(parents=True)
    steps = [{"users": 1, "start": 10.0, "warmup_s": 1.0, "end": 20.0}]
    schedule.write_text(json.dumps({"phase": "one_user", "architecture": "sync", "steps": steps}))
    rows = ["t,name,cpu_percent,rss_mb"]
    for t in [8.0 + 0.5 * i for i in range(30)]:  # 8.0 … 22.5
        rows += [f"{t},locust,{locust_cpu.get(t, 5.0)},50", f"{t},machine,40.0,1000"]
        if others_cpu is not None:
            rows.append(f"{t},others,{others_cpu.get(t, 2.0)},")
    resources = tmp_path / "resources" / "one_user_sync.csv"
    resources.parent.mkdir()
    resources.write_text("\n".join(rows) + "\n")
    return tmp_path


def test_a_hot_start_up_outside_the_window_is_not_flagged(tmp_path: Path) -> None:
    run = _run(tmp_path, {9.0: 95.0, 10.5: 97.0, 21.0: 93.0})  # start-up, warm-up, report writing
    saturation = saturation_section(run, "sync", cores=2)
    assert saturation is not None and saturation.flags == []
    assert saturation.load_generator_max_cpu_percent == 5.0


def test_a_hot_generator_inside_the_window_is_flagged(tmp_path: Path) -> None:
    saturation = saturation_section(_run(tmp_path, {15.0: 96.0}), "sync", cores=2)
    assert saturation is not None and len(saturation.flags) == 1
    assert "one_user: the load generator (locust) reached 96%" in saturation.flags[0]


def test_a_sample_counts_when_its_interval_lies_in_a_window() -> None:
    samples = [Sample(t, "p", 1.0, None) for t in (10.0, 10.5, 11.0, 11.5, 12.0)]
    kept = within_windows(samples, [(10.5, 11.5)])
    assert [s.t for s in kept] == [11.0, 11.5]  # (10.5, 11.0] and (11.0, 11.5]; the first covers nothing


def test_another_job_taking_cpu_during_the_window_is_flagged_by_its_mean(tmp_path: Path) -> None:
    busy_before = {t: 90.0 for t in (8.5, 9.0, 9.5, 10.0, 10.5)}  # before the measured window: not counted
    quiet = saturation_section(_run(tmp_path / "quiet", {}, {**busy_before, 15.0: 60.0}), "sync", cores=2)
    assert quiet is not None and quiet.flags == []  # one hot sample: the mean stays low
    assert quiet.others_cpu_percent is not None and quiet.others_cpu_percent < OTHERS_PERCENT
    busy = {8.0 + 0.5 * i: 40.0 for i in range(30)}
    flagged = saturation_section(_run(tmp_path / "busy", {}, busy), "sync", cores=2)
    assert flagged is not None and flagged.others_cpu_percent == 40.0
    (flag,) = flagged.flags
    assert flag.startswith("one_user: processes outside the run used 40% of one core")
