"""Locust's users on a dead target: with the failure backoff (the default) each waits a short, growing
time after every refused connection; without it (``--failure-backoff-max-s 0``) they spin. The entries
carry the architecture's name (``sync predict``). Counts only — never a speed."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark.entries import PREDICT, entry_name
from scoring_bench.core.settings import Settings
from scoring_bench.stack.process_env import process_env
from tests.ports import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
USERS, SECONDS = 4, 3


def _requests_to_a_dead_target(tmp_path: Path, *options: str) -> list[dict[str, str]]:
    """Every request SyncScoringUser's users made in SECONDS against a port nobody listens on."""
    tmp_path.mkdir(parents=True)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("LOCUST_", "BENCH_"))}
    env = process_env(Settings(scoring_sync_port=free_port()), base=base)
    argv = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        "benchmark/locustfile.py",
        "--headless",
        "--only-summary",
        "--loglevel",
        "WARNING",
        "-u",
        str(USERS),
        "-r",
        str(USERS),
        "-t",
        f"{SECONDS}s",
        "--requests-csv",
        str(tmp_path / "requests.{pid}.csv"),
        *options,
        "SyncScoringUser",
    ]
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert "Traceback" not in done.stderr, done.stderr
    rows: list[dict[str, str]] = []
    for path in tmp_path.glob("requests.*.csv"):
        with path.open(newline="") as handle:
            rows += list(csv.DictReader(handle))
    return rows


@pytest.mark.timeout(120)
def test_users_back_off_on_a_dead_target_and_spin_without_the_backoff(tmp_path: Path) -> None:
    polite = _requests_to_a_dead_target(tmp_path / "backoff")
    # from 50 ms, doubling up to 1 s, full jitter: about ten requests a user in 3 s
    assert 0 < len(polite) <= USERS * 30, len(polite)
    assert {row["name"] for row in polite} == {entry_name("sync", PREDICT)}
    assert {row["ok"] for row in polite} == {"0"}
    spinning = _requests_to_a_dead_target(tmp_path / "spin", "--failure-backoff-max-s", "0")
    assert len(spinning) > 10 * len(polite), (len(spinning), len(polite))
