"""Profiling a real stack: a handful of sequential requests (not a load test), then the
profiles each service wrote when it stopped, merged per architecture."""

from __future__ import annotations

import json
import pstats
from pathlib import Path

import pytest

from benchmark.profiles import CATEGORIES, collect, profile_client
from tests.integration.conftest import SCORING_SERVICES, SEED_BODY, Stack, stack_settings, start_stack

pytestmark = pytest.mark.integration

REQUESTS = 10
ARCHITECTURES = {"scoring-sync": "sync", "scoring-async": "async"}


def send_a_few(stack: Stack) -> None:
    for name in SCORING_SERVICES:
        for _ in range(REQUESTS):
            assert stack.post(name, SEED_BODY).status_code == 200


def test_pyinstrument_breakdown_of_both_architectures(tmp_path: Path) -> None:
    prof, profiles = tmp_path / "prof", tmp_path / "profiles"
    with start_stack(stack_settings(tmp_path, profiler="pyinstrument", profile_dir=prof)) as stack:
        send_a_few(stack)
        profile_client(stack.url("scoring-async"), SEED_BODY, 3, profiles / "client-async")
    assert {p.name.rsplit("-", 1)[0] for p in prof.glob("*.pyisession")} == {
        "model-sync",
        "model-async",
        "scoring-sync",
        "scoring-async",
    }
    for name, arch in ARCHITECTURES.items():
        out = profiles / arch
        result = collect(prof, name, out)
        for file in ("pyinstrument.html", "pyinstrument.txt", "breakdown.json"):
            assert (out / file).stat().st_size > 0, file
        written = json.loads((out / "breakdown.json").read_text())
        assert written == result["breakdown"]
        shares = written["shares"]
        assert list(shares) == list(CATEGORIES)
        assert sum(shares.values()) == pytest.approx(1.0)
        assert max(shares, key=shares.get) == "model_calls", (name, shares)  # type: ignore[arg-type]
        assert written["wall_ms"] > 0
    for file in ("pyinstrument.html", "pyinstrument.txt"):
        assert (profiles / "client-async" / file).stat().st_size > 0


def test_yappi_wall_profiles_of_both_architectures(tmp_path: Path) -> None:
    prof, profiles = tmp_path / "prof", tmp_path / "profiles"
    with start_stack(stack_settings(tmp_path, profiler="yappi-wall", profile_dir=prof)) as stack:
        send_a_few(stack)
    for name, arch in ARCHITECTURES.items():
        out = profiles / arch
        result = collect(prof, name, out)
        assert result["breakdown"] is None
        assert [p.name for p in result["written"]] == ["yappi-wall.pstats"]
        stats = pstats.Stats(str(out / "yappi-wall.pstats"))
        scorer = "scorer_sync.py" if arch == "sync" else "scorer_async.py"
        entries = stats.stats  # type: ignore[attr-defined]
        functions = {
            function.rsplit(".", 1)[-1]  # yappi names methods Class.method
            for file, _, function in entries
            if Path(file).name == scorer
        }
        assert {"predict", "read_features"} <= functions, functions
