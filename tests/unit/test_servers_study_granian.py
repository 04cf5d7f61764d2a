"""granian where the servers study needs it beyond the study: the faults experiment finds its workers and
does not skip a one-worker granian; the profiler leaves out the Flask handler on granian, and says why."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from flask import Flask

from benchmark.faults.inject import worker_processes
from benchmark.faults.plan import faults_for
from benchmark.profile_experiment import not_profiled, profiled
from benchmark.settings import BenchSettings
from scoring_bench.core.settings import Settings
from scoring_bench.service.profiling import install_flask, unprofilable

# A master as granian's reads (its command line names granian): it forks a worker, which keeps that command
# line, and starts a helper process of another command line (as multiprocessing's resource tracker).
MASTER = (
    "import os, subprocess, sys, time; "
    "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
    "pid = os.fork(); time.sleep(60)"
)


@pytest.fixture
def granian_like() -> Iterator[psutil.Process]:
    proc = subprocess.Popen([sys.executable, "-c", MASTER, "granian"], start_new_session=True)
    master = psutil.Process(proc.pid)
    deadline = time.monotonic() + 10
    while len(master.children()) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    try:
        yield master
    finally:
        for p in [*master.children(recursive=True), master]:
            try:
                p.kill()
            except psutil.Error:
                pass
        proc.wait(10)


def test_granians_forked_workers_are_its_workers(granian_like: psutil.Process) -> None:
    workers = worker_processes(granian_like)
    assert len(workers) == 1 and "granian" in workers[0].cmdline()
    others = [c for c in granian_like.children() if c.pid != workers[0].pid]
    assert len(others) == 1 and "granian" not in others[0].cmdline()


def test_a_one_worker_granian_is_not_skipped_a_one_worker_uvicorn_is() -> None:
    def kill(**values: object) -> str | None:
        bench = BenchSettings(bench_faults=["server-worker-kill"], **values)  # type: ignore[arg-type]
        (fault,) = faults_for(bench, "async")
        return fault.skipped

    assert kill(scoring_async_server="granian", scoring_async_workers=1) is None
    skipped = kill(scoring_async_server="uvicorn", scoring_async_workers=1)
    assert skipped is not None and "SCORING_ASYNC_WORKERS=1" in skipped


def test_the_flask_handler_on_granian_is_left_out_of_the_profile_and_says_why() -> None:
    on_granian = BenchSettings(architectures=["sync", "async"], scoring_sync_server="granian")
    assert profiled(on_granian) == ["async"]
    reason = not_profiled(on_granian)["sync"]
    assert "SCORING_SYNC_SERVER=gunicorn" in reason
    assert unprofilable(on_granian, "scoring-async") is None  # granian runs FastAPI's lifespan
    both = BenchSettings(architectures=["sync", "async"], scoring_async_server="granian")
    assert profiled(both) == ["sync", "async"] and not_profiled(both) == {}


def test_install_flask_on_granian_leaves_the_app_as_it_is(tmp_path: Path) -> None:
    app = Flask("t")
    wsgi = app.wsgi_app
    settings = Settings(profiler="pyinstrument", profile_dir=tmp_path, scoring_sync_server="granian")
    install_flask(app, settings, "scoring-sync")
    assert app.wsgi_app == wsgi
    install_flask(app, settings.model_copy(update={"scoring_sync_server": "gunicorn"}), "scoring-sync")
    assert app.wsgi_app != wsgi  # on gunicorn it is profiled
