"""``make bench``: start the stack, run the experiments, stop the stack, write the report.

Each run writes one folder (``results/<run-id>/``, ``results/latest`` points at it). Raw files
are written as the experiments go; the report is built from them at the end — also after an
error or Ctrl-C, in which case ``run.json`` says ``"complete": false``.
"""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

from benchmark import environment
from benchmark.attribution import planned_measurements, run_attribution
from benchmark.burst import planned_bursts, run_burst
from benchmark.locust_experiment import PHASES, planned_seconds, run_locust
from benchmark.profile_experiment import profiled, run_client_profiles, run_service_profiles
from benchmark.report import build_report
from benchmark.settings import BenchSettings
from benchmark.timeit_experiment import run_timeit
from scoring_bench.core.settings import Settings
from scoring_bench.stack.process_env import PROJECT_ROOT
from scoring_bench.stack.supervisor import running_stack

SCHEMA_VERSION = 1


def new_run_dir(settings: BenchSettings) -> Path:
    run_id = settings.run_id or time.strftime("%Y%m%d-%H%M%S")
    run_dir = settings.results_dir / run_id
    if run_dir.exists():
        raise FileExistsError(f"{run_dir} exists already: choose another RUN_ID")
    run_dir.mkdir(parents=True)
    latest = settings.results_dir / "latest"
    if latest.is_symlink() or latest.exists():
        latest.unlink()
    latest.symlink_to(run_id)
    return run_dir


class RunRecord:
    """``run.json``: what was asked for, and whether it all ran."""

    def __init__(self, run_dir: Path, settings: BenchSettings) -> None:
        self.path = run_dir / "run.json"
        bench = {k: v for k, v in settings.model_dump(mode="json").items() if k not in Settings.model_fields}
        self.data: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "run_id": run_dir.name,
            "profile": settings.bench_profile,
            "started_at": time.time(),
            "finished_at": None,
            "complete": False,
            "experiments": list(settings.experiments),
            "architectures": list(settings.architectures),
            "bench": bench,
            "errors": [],
            "interrupted": False,
        }
        self.save()

    def error(self, where: str, exc: BaseException) -> None:
        self.data["errors"].append(f"{where}: {type(exc).__name__}: {exc}")
        self.save()

    def finish(self, complete: bool) -> None:
        self.data.update(finished_at=time.time(), complete=complete and not self.data["errors"])
        self.save()

    def save(self) -> None:
        self.path.write_text(json.dumps(self.data, indent=2))


class Plan:
    """Progress bars (with time left) for every step of the run."""

    def __init__(self, settings: BenchSettings, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, TaskID] = {}
        seconds = planned_seconds(settings)
        for arch in settings.architectures:
            if "profile" in settings.experiments and arch in profiled(settings):
                self._add(f"profile {arch}", 3 * settings.bench_profile_requests)
            if "timeit" in settings.experiments:
                self._add(f"timeit {arch}", settings.bench_timeit_requests)
            if "locust" in settings.experiments:
                for phase in PHASES:
                    self._add(f"locust {phase} {arch}", seconds[phase])
        if "burst" in settings.experiments:
            self._add("burst", planned_bursts(settings))
        if "attribution" in settings.experiments:
            self._add("attribution", planned_measurements(settings))

    def _add(self, name: str, total: float) -> None:
        self.tasks[name] = self.progress.add_task(name, total=total)

    def update(self, name: str, done: float) -> None:
        self.progress.update(self.tasks[name], completed=done)

    def ticker(self, name: str) -> Callable[[float], None]:
        return lambda done: self.update(name, done)

    def phase_ticker(self, arch: str) -> Callable[[str, float], None]:
        """Progress of the Locust phases of one architecture."""
        return lambda phase, elapsed: self.update(f"locust {phase} {arch}", elapsed)

    def advancer(self, name: str) -> Callable[[], None]:
        return lambda: self.progress.advance(self.tasks[name])


@contextmanager
def step(record: RunRecord, where: str, console: Console) -> Iterator[None]:
    """Run one experiment; an error is recorded and the run goes on with the next one."""
    try:
        yield
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:
        record.error(where, exc)
        console.print(f"[red]{where} failed:[/red] {exc}")
        console.print(traceback.format_exc(), style="dim", markup=False)


def run(settings: BenchSettings, console: Console | None = None) -> Path:
    console = console or Console(stderr=True)
    run_dir = new_run_dir(settings)
    record = RunRecord(run_dir, settings)
    stack = settings.stack_settings()
    (run_dir / "environment.json").write_text(
        json.dumps(environment.describe(stack, record.data["bench"], PROJECT_ROOT), indent=2)
    )
    console.print(f"run folder: {run_dir}")
    columns = (
        TextColumn("{task.description:<28}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeRemainingColumn(),
    )
    complete = False
    try:
        with Progress(*columns, console=console) as progress:
            plan = Plan(settings, progress)
            if "profile" in settings.experiments:
                with step(record, "profile", console):
                    run_service_profiles(settings, run_dir, plan.update)
            with running_stack(stack, console.log) as state:
                for arch in settings.architectures:
                    if "profile" in settings.experiments and arch in profiled(settings):
                        with step(record, f"profile client {arch}", console):
                            run_client_profiles(settings, arch, run_dir)
                    if "timeit" in settings.experiments:
                        with step(record, f"timeit {arch}", console):
                            run_timeit(
                                stack,
                                arch,
                                settings.bench_timeit_requests,
                                run_dir / "timeit",
                                plan.ticker(f"timeit {arch}"),
                                settings.bench_queue_timeout_s,
                            )
                    if "locust" in settings.experiments:
                        with step(record, f"locust {arch}", console):
                            run_locust(
                                settings,
                                state,
                                arch,
                                run_dir,
                                plan.phase_ticker(arch),
                            )
            if "burst" in settings.experiments:  # a stack per worker concurrency: after the main one stopped
                with step(record, "burst", console):
                    run_burst(settings, run_dir, plan.advancer("burst"), console.log)
            if "attribution" in settings.experiments:  # its own stacks: after the main one stopped
                with step(record, "attribution", console):
                    run_attribution(settings, run_dir, plan.advancer("attribution"), record.error)
        complete = True
    except KeyboardInterrupt:
        record.data["interrupted"] = True
        record.error(
            "run", KeyboardInterrupt("interrupted (Ctrl-C): the stack was stopped, partial results kept")
        )
        console.print("[yellow]interrupted:[/yellow] the stack is stopped; building a report from what ran")
    finally:
        record.finish(complete)
        build_report(run_dir)
    return run_dir
