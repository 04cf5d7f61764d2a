"""The queue's waterfall measures its two ends on real stacks: the seed-faithful queue (a prefork pool,
Celery's defaults, the client polling plainly) and the tuned one, through the queue's client. Structure
only — never a speed."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmark.attribution import LONG_POLL, PLAIN_POLLING, measure, queue_waterfall
from benchmark.settings import BenchSettings
from tests.integration.conftest import stack_settings

pytestmark = pytest.mark.integration


@pytest.mark.timeout(180)
def test_the_seed_faithful_and_the_tuned_queue_are_measured(tmp_path: Path) -> None:
    stack = stack_settings(tmp_path / "stack")
    ports = {name: getattr(stack, name) for name in stack.model_fields_set}
    base = BenchSettings(
        **ports,
        bench_profile="smoke",
        architectures=["queue"],
        bench_attribution_studies=["queue"],
        bench_attribution_repeats=1,
        bench_attribution_timeit=3,
        bench_attribution_load_s=2,
        bench_attribution_users=8,
        bench_warmup_s=0.5,
    )
    configs = queue_waterfall(base)
    seed, tuned = configs[0], configs[-1]
    assert (seed.client, tuned.client) == (PLAIN_POLLING, LONG_POLL)
    for config in (seed, tuned):
        rows = measure(base, config, tmp_path / "run", lambda: None)
        assert [row["arch"] for row in rows] == ["queue"], config.label
        (row,) = rows
        assert row["one_user_n"] == 3 and row["p50_ms"] and row["p50_ms"] > 0, row
        assert row["rps"] and row["rps"] > 0 and row["failure_ratio"] == 0, row
        assert row["cpu_ms_per_request"] and row["cpu_ms_per_request"] > 0, row
        assert row["polls_per_task"] is not None, row
        recorded = tmp_path / "run" / "attribution" / "queue" / str(config.step) / "config.json"
        assert recorded.is_file()
    assert (tmp_path / "run" / "attribution" / "queue" / "0" / "config.json").read_text().count(
        "prefork"
    ) >= 1
