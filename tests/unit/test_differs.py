"""The settings diff under every comparison (benchmark/analysis/differs.py)."""

from __future__ import annotations

import pytest

from benchmark.analysis import differs
from benchmark.analysis.differs import Difference
from scoring_bench.core.settings import Settings


def test_headline_sides_differ_in_architecture_and_process_counts() -> None:
    settings = Settings()
    line = differs.comparison_line(settings, "sync", settings, "async")
    assert line == "differs: architecture sync vs async; scoring processes 2 vs 1; model API processes 2 vs 1"


def test_equal_process_counts_leave_only_the_architecture() -> None:
    settings = Settings(scoring_async_workers=2, model_async_workers=2)
    assert (
        differs.comparison_line(settings, "sync", settings, "async") == "differs: architecture sync vs async"
    )


def test_same_architecture_lists_each_changed_label() -> None:
    a, b = Settings(), Settings(model_kind="cpu", num_models=4)
    diffs = differs.compare_sides(a, "async", b, "async")
    assert diffs == [Difference("models per request", "2", "4"), Difference("model kind", "io", "cpu")]
    assert differs.describe(diffs) == "differs: models per request 2 vs 4; model kind io vs cpu"
    assert differs.describe([]) == "differs: nothing"


def test_a_setting_the_architecture_does_not_read_is_not_a_difference() -> None:
    a, b = Settings(), Settings(scoring_sync_threads=8, batch_max_size=4)
    assert differs.compare_sides(a, "async", b, "async") == []
    assert differs.compare_sides(a, "sync", b, "sync") == [
        Difference("concurrency per scoring process", "64 threads", "8 threads")
    ]
    assert differs.compare_sides(a, "batched", b, "batched") == [
        Difference("batching", "up to 32 or 5 ms", "up to 4 or 5 ms")
    ]


def test_confounds_are_what_the_factor_does_not_explain() -> None:
    settings = Settings()
    diffs = differs.compare_sides(settings, "sync", settings, "async")
    left = differs.confounds(diffs, differs.ARCHITECTURE_CONSEQUENCES)
    assert [d.name for d in left] == ["scoring processes", "model API processes"]


def test_changed_settings_ignores_where_a_stack_runs() -> None:
    a = Settings()
    b = Settings(scoring_sync_port=15001, stack_dir="/tmp/elsewhere", num_models=3)
    assert differs.changed_settings(a, b) == {"num_models": (2, 3)}


def test_every_architecture_has_a_side_and_an_unknown_one_is_refused() -> None:
    settings = Settings()
    for arch in ("sync", "async", "batched", "queue"):
        side = differs.side_config(settings, arch)
        assert side["models per request"] == "2" and side["scoring processes"]
    with pytest.raises(ValueError, match="unknown architecture"):
        differs.side_config(settings, "grpc")
