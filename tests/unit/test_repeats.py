"""The repetitions of the decisive measurements and their spread (benchmark.analysis.repeats)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmark.analysis.phases import one_user_section, sustained_section
from benchmark.analysis.raw import repeat_phase
from benchmark.analysis.repeats import repeated, repeats_section, repetitions
from tests.fixtures.run_folder import make_run_folder


def test_repeated_gives_the_median_and_the_range_of_what_was_measured() -> None:
    spread = repeated([745.0, 690.0, None, 781.0])
    assert spread is not None
    assert (spread.median, spread.min, spread.max, spread.n) == (745.0, 690.0, 781.0, 3)
    assert spread.values == [745.0, 690.0, None, 781.0]
    assert repeated([]) is None
    nothing = repeated([None])
    assert nothing is not None and nothing.n == 0 and nothing.median is None


def test_a_repetition_is_a_phase_of_its_own() -> None:
    assert repeat_phase(3) == "repeat-3"
    with pytest.raises(ValueError):
        repeat_phase(1)  # the first repetition is the one_user and sustained phases


def test_each_repetition_is_measured_on_its_own(tmp_path: Path) -> None:
    run = make_run_folder(tmp_path / "run", repeats=3)
    assert repetitions(run, "sync") == 3
    section = repeats_section(run, "sync", None, [400.0, 380.0, None])
    assert section is not None and section.one_user_p50_ms is not None and section.sustained_rps is not None
    p50s = [one_user_section(run, "sync", None, phase) for phase in ("one_user", "repeat-2", "repeat-3")]
    assert section.one_user_p50_ms.values == [s.p50_ms for s in p50s if s]
    first, second, third = section.one_user_p50_ms.values
    assert first is not None and second is not None and third is not None
    assert first < second < third  # the fixture makes each repetition 10% slower
    assert section.one_user_p50_ms.median == pytest.approx(second)
    rps = [sustained_section(run, "sync", None, "sustained")] + [
        sustained_section(run, "sync", None, f"repeat-{k}", step_index=1) for k in (2, 3)
    ]
    assert section.sustained_rps.values == [s.rps for s in rps if s]
    assert section.server_cpu_ms_per_request is not None and section.server_cpu_ms_per_request.n == 3
    assert (
        section.openloop_rate_at_limit_rps is not None and section.openloop_rate_at_limit_rps.median == 390.0
    )


def test_a_run_without_repetitions_has_one_of_each(tmp_path: Path) -> None:
    run = make_run_folder(tmp_path / "run")
    section = repeats_section(run, "async", None)
    assert section is not None and section.sustained_rps is not None and section.sustained_rps.n == 1
    assert section.openloop_rate_at_limit_rps is None
