"""The web UI's Comparison tab (benchmark/locust_ui.py) on a real Locust against a real stack: Locust's web
UI as `make locust-ui` starts it (the project's locustfile, the class picker), standalone and as a master
whose worker runs the users (the tab reads the master's aggregate), a swarm of every scoring user class
through the UI's own HTTP API, then the tab's data: a row per architecture beside its ideal, and the same
rows in the ``extended_stats`` the page polls. Structure only, never a speed."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from benchmark.load import LOCUSTFILE
from benchmark.locust_ui_rows import ideals_for, main_entry
from scoring_bench.stack.process_env import PROJECT_ROOT, process_env
from tests.integration.conftest import Stack
from tests.ports import free_port

pytestmark = pytest.mark.integration

CLASSES = {
    "sync": "SyncScoringUser",
    "async": "AsyncScoringUser",
    "batched": "BatchedScoringUser",
    "queue": "QueueScoringUser",
}
USERS = 8  # two of each class: Locust spreads users over classes of equal weight
STOP_TIMEOUT_S = 15.0


def _get(url: str) -> requests.Response:
    with requests.Session() as session:
        session.trust_env = False
        return session.get(url, timeout=10)


def _post(url: str, data: Any = None) -> requests.Response:
    with requests.Session() as session:
        session.trust_env = False
        return session.post(url, data=data, timeout=10)


@pytest.fixture(params=["standalone", "master"])
def locust_ui(request: pytest.FixtureRequest, stack: Stack, tmp_path: Path) -> Iterator[str]:
    """Locust's web UI on a free port, aimed at ``stack``, standalone or as a master whose one worker
    (``--processes 1``) runs the users and reports to it; stopped (SIGINT, then SIGKILL) after."""
    port = free_port()
    argv = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--class-picker"]
    if request.param == "master":  # the forked worker reaches its master at --master-host:--master-port
        master_port = str(free_port())
        argv += ["--processes", "1", "--master-bind-host", "127.0.0.1", "--master-bind-port", master_port]
        argv += ["--master-host", "127.0.0.1", "--master-port", master_port]
    argv += ["--web-host", "127.0.0.1", "--web-port", str(port), "--loglevel", "WARNING"]
    with (tmp_path / "locust.log").open("w") as log:
        proc = subprocess.Popen(
            argv,
            env=process_env(stack.settings),
            cwd=PROJECT_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for_ui(url, proc, tmp_path / "locust.log")
        if request.param == "master":
            _wait_for_worker(url)
        yield url
    finally:
        _stop(proc)
    assert proc.returncode is not None


def _wait_for_ui(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"Locust ended ({proc.returncode}): {log.read_text()[-2000:]}"
        try:
            if _get(url + "/").status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"Locust's web UI did not answer within 30 s: {log.read_text()[-2000:]}")


def _wait_for_worker(url: str) -> None:
    deadline = time.monotonic() + 30
    while _get(url + "/stats/requests").json().get("worker_count", 0) < 1:
        assert time.monotonic() < deadline, "no worker reached the master within 30 s"
        time.sleep(0.2)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGINT to Locust's process group (its forked worker too), SIGKILL if that is not enough."""
    for sig in (signal.SIGINT, signal.SIGKILL):
        if proc.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(STOP_TIMEOUT_S)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # a worker its master left behind


def _rows_of_every_architecture(url: str, timeout_s: float = 30.0) -> list[dict[str, Any]]:
    """The tab's rows once every architecture has one and sync's req/s is counted (Locust's current
    req/s leaves out the last 2 s)."""
    rows: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        rows = _get(url + "/comparison").json()["rows"]
        if [r["architecture"] for r in rows] == list(CLASSES) and all(r["rps"] > 0 for r in rows):
            return rows
        time.sleep(0.5)
    raise AssertionError(f"not every architecture in the tab after {timeout_s} s: {rows}")


@pytest.mark.timeout(150)
def test_the_tab_shows_each_running_architecture_beside_its_ideal(stack: Stack, locust_ui: str) -> None:
    page = _get(locust_ui + "/").text
    assert '"extended_tabs"' in page and '"comparison"' in page  # the page hands the tab to the UI
    assert _get(locust_ui + "/comparison").json() == {"rows": []}  # nothing ran yet

    form = [("user_count", str(USERS)), ("spawn_rate", str(USERS)), ("host", "")]
    form += [("user_classes", name) for name in CLASSES.values()]
    answer = _post(locust_ui + "/swarm", form).json()
    assert answer["success"], answer
    rows = _rows_of_every_architecture(locust_ui)

    ideals = ideals_for(stack.settings)
    for row in rows:
        arch = row["architecture"]
        assert row["entry"] == main_entry(arch)
        assert row["requests"] > 0 and row["failures"] == 0, row
        assert row["ideal_p50_ms"] == pytest.approx(ideals[arch].p50_ms)
        assert row["ideal"] == ideals[arch].description
        assert row["p50_ms"] > 0 and row["overhead_p50_ms"] == pytest.approx(
            row["p50_ms"] - ideals[arch].p50_ms
        )
        if arch == "sync":
            assert row["p50_vs_sync"] is None and row["rps_vs_sync"] is None
        else:
            assert row["p50_vs_sync"] > 0 and row["rps_vs_sync"] > 0

    stats = _get(locust_ui + "/stats/requests").json()  # what the page polls every 2 s
    names = {entry["name"] for entry in stats["stats"]}
    assert {main_entry(arch) for arch in CLASSES} <= names  # Locust's own rows, one per architecture
    [tab] = [item for item in stats["extended_stats"] if item["key"] == "comparison"]
    assert [r["entry"] for r in tab["data"]] == [main_entry(arch) for arch in CLASSES]
    assert all(r["ideal_ms"] and r["ideal"].startswith("E[") for r in tab["data"])

    csv_text = _get(locust_ui + "/comparison/csv").text
    assert csv_text.splitlines()[0].startswith("architecture,entry,")
    assert len(csv_text.splitlines()) == 1 + len(CLASSES)
    assert _post(locust_ui + "/stop").status_code == 200
