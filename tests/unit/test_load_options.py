"""The options the runner gives Locust carry the benchmark's settings (benchmark/load.py)."""

from __future__ import annotations

from pathlib import Path

from benchmark.load import _queue_options, locust_options
from benchmark.settings import BenchSettings


def test_failure_backoff_reaches_locust_and_a_remote_master(tmp_path: Path) -> None:
    settings = BenchSettings(locust_failure_backoff_max_s=0.25)
    argv = locust_options(settings, "async", "sustained", [], tmp_path)
    assert argv[argv.index("--failure-backoff-max-s") + 1] == "0.25"
    assert _queue_options(settings)["failure_backoff_max_s"] == 0.25
