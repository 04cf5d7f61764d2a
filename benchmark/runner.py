"""``make bench``: start the stack, run the experiments, stop the stack, write the report.

``BENCH_TARGET=external``: the stack was started by someone else (benchmark/external.py): the runner checks
that each target is healthy, starts, restarts and stops nothing, and skips what needs that, saying why in
``environment.json``'s ``target`` (the report's "Skipped against the external target").

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
from benchmark.analysis import VERIFICATION_FILE
from benchmark.analysis.openloop import openloop_section
from benchmark.analysis.phases import one_user_section, ramp_section
from benchmark.attribution import planned_measurements, run_attribution
from benchmark.burst import planned_bursts, run_burst
from benchmark.calibration import calibrate, drift_warning
from benchmark.control import run_control, with_control
from benchmark.decisive import focused_rates, p99_limit_ms, sweep_rates
from benchmark.duration import CROSSCHECK_WARMUP_S, PAUSE_S, planned_duration_s
from benchmark.external import (
    SKIP_REASONS,
    TargetDown,
    Targets,
    check_targets,
    external_stack,
    gate_skip,
    has_control,
    health_names,
    skipped,
    stack_target,
)
from benchmark.faults.experiment import planned_faults, run_faults
from benchmark.locust_experiment import PHASES, breaking_users, planned_seconds, run_locust, run_repeat
from benchmark.openloop.experiment import OpenLoopOptions, run_crosscheck, run_openloop
from benchmark.profile_experiment import profiled, run_client_profiles, run_service_profiles
from benchmark.report import build_report
from benchmark.settings import BenchSettings
from benchmark.soak.experiment import run_soak
from benchmark.summary import Calibration
from benchmark.timeit_experiment import run_timeit
from benchmark.verification import run_gate
from scoring_bench.core.settings import Settings
from scoring_bench.stack.process_env import PROJECT_ROOT
from scoring_bench.stack.supervisor import StackState, running_stack

OPEN_LOOP_PAUSE_S = PAUSE_S  # between two rates of a sweep: the last requests of one do not overlap the next

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
        experiments = settings.experiments
        if settings.bench_verify_requests:
            self._add("verification", 1)
        for arch in settings.architectures:
            if "profile" in experiments and arch in profiled(settings) and settings.bench_target == "local":
                self._add(f"profile {arch}", 3 * settings.bench_profile_requests)  # the server-side profiles
            if "timeit" in experiments:
                self._add(f"timeit {arch}", settings.bench_timeit_requests)
            if "locust" in experiments:
                for phase in PHASES:
                    self._add(f"locust {phase} {arch}", seconds[phase])
            if "openloop" in experiments:
                self._add(f"openloop {arch}", 1)
            if "crosscheck" in experiments:
                self._add(f"crosscheck {arch}", settings.bench_crosscheck_s)
            if "soak" in experiments:
                self._add(f"soak {arch}", settings.soak_s)
            if settings.bench_repeats > 1:
                self._add(f"repeats {arch}", settings.bench_repeats - 1)
        if settings.runs_control():
            self._add("control", settings.bench_repeats)
        if "burst" in experiments:
            self._add("burst", planned_bursts(settings))
        if "attribution" in experiments:
            self._add("attribution", planned_measurements(settings))
        if "faults" in experiments:
            self._add("faults", planned_faults(settings))

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
    except (KeyboardInterrupt, SystemExit, VerificationFailed):
        raise
    except Exception as exc:
        record.error(where, exc)
        console.print(f"[red]{where} failed:[/red] {exc}")
        console.print(traceback.format_exc(), style="dim", markup=False)


class VerificationFailed(RuntimeError):
    """The stack does not do what the benchmark assumes (the gate's counts or answers): measuring it would
    mislead, so the run stops here."""


def measure_machine(settings: BenchSettings, console: Console) -> Calibration:
    console.print(f"calibrating the machine and checking it is quiet ({settings.bench_calibration_s:g} s) …")
    calibration = calibrate(settings.bench_calibration_s)
    for warning in calibration.warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}")
    return calibration


def measure_machine_again(settings: BenchSettings, run_dir: Path, console: Console) -> None:
    """The calibration once more, when the main stack's measurements are over: ``environment.json``'s
    ``calibration_after``; the report warns when one core's speed drifted meanwhile."""
    path = run_dir / "environment.json"
    environment = json.loads(path.read_text())
    console.print("calibrating the machine again (did its speed drift during the measurements?) …")
    after = calibrate(settings.bench_calibration_s)
    environment["calibration_after"] = after.model_dump(mode="json")
    path.write_text(json.dumps(environment, indent=2))
    warning = drift_warning(Calibration.model_validate(environment["calibration"]), after)
    if warning:
        console.print(f"[yellow]warning:[/yellow] {warning}")


def verify(settings: BenchSettings, run_dir: Path, plan: Plan, console: Console) -> None:
    """The gate before any load: ``verification.json``; a failure stops the run."""
    targets = settings.targets()  # external: the model APIs' counts from every metrics URL (pods summed)
    metrics = targets.metrics_urls() if targets.mode == "external" else None
    verification = run_gate(
        settings.stack_settings(), settings.architectures, settings.bench_verify_requests, None, metrics
    )
    (run_dir / VERIFICATION_FILE).write_text(verification.model_dump_json(indent=1))
    plan.update("verification", 1)
    if not verification.passed:
        problems = [p for row in verification.rows for p in row.problems] + verification.problems
        raise VerificationFailed("the verification gate failed: " + "; ".join(problems))
    console.log(f"verification: every architecture passed ({settings.bench_verify_requests} requests each)")


def capacity_and_limit(
    settings: BenchSettings, run_dir: Path, arch: str
) -> tuple[float | None, float | None]:
    """The ramp's highest throughput, and the p99 an open-loop rate must stay under."""
    one_user = one_user_section(run_dir, arch, None)
    ramp = ramp_section(run_dir, arch, one_user.p95_ms if one_user else None)
    capacity = ramp.peak.rps if ramp and ramp.peak else None
    return capacity, p99_limit_ms(settings.bench_open_p99_limit_ms, one_user.p99_ms if one_user else None)


def openloop_options(settings: BenchSettings, rep: int) -> OpenLoopOptions:
    """Each repetition draws its own Poisson arrivals (the seed + the repetition): the repetitions
    measure the stack's spread, not one schedule's."""
    return OpenLoopOptions(
        step_s=settings.bench_open_step_s,
        arrivals=settings.bench_open_arrivals,
        seed=settings.bench_open_seed + rep - 1,
        connections=settings.bench_open_connections,
        queue_poll_wait_ms=settings.bench_queue_poll_wait_ms,
        queue_timeout_s=settings.bench_queue_timeout_s,
        queue_submit_wait_ms=settings.bench_queue_wait_ms,
        pause_s=OPEN_LOOP_PAUSE_S,
    )


def open_loop(settings: BenchSettings, state: StackState, arch: str, run_dir: Path, rep: int) -> None:
    """Repetition ``rep`` of the open-loop sweep: the whole grid first, then the knee's neighbourhood."""
    capacity, limit = capacity_and_limit(settings, run_dir, arch)
    rates = sweep_rates(settings.bench_open_fractions, settings.bench_open_rates, capacity)
    if rep > 1:
        first = openloop_section(run_dir, arch, limit)
        rates = focused_rates(
            [r.offered_rps for r in first.rates] if first else rates,
            first.max_rate_under_limit_rps if first else None,
        )
    if not rates:
        raise RuntimeError(f"no rate to offer {arch}: the ramp measured no capacity (set BENCH_OPEN_RATES)")
    run_openloop(settings, state, arch, run_dir, rates, rep, openloop_options(settings, rep))


def first_round(
    settings: BenchSettings,
    state: StackState,
    arch: str,
    run_dir: Path,
    plan: Plan,
    record: RunRecord,
    console: Console,
) -> None:
    """Every experiment on the running stack for one architecture, each measurement once."""
    experiments, stack = settings.experiments, settings.stack_settings()
    if "profile" in experiments and arch in profiled(settings):
        with step(record, f"profile client {arch}", console):
            run_client_profiles(settings, arch, run_dir)
    if "timeit" in experiments:
        with step(record, f"timeit {arch}", console):
            run_timeit(
                stack,
                arch,
                settings.bench_timeit_requests,
                run_dir / "timeit",
                plan.ticker(f"timeit {arch}"),
                settings.bench_queue_timeout_s,
            )
    if "locust" in experiments:
        with step(record, f"locust {arch}", console):
            run_locust(settings, state, arch, run_dir, plan.phase_ticker(arch))
    if "openloop" in experiments:
        with step(record, f"openloop {arch}", console):
            open_loop(settings, state, arch, run_dir, 1)
            plan.update(f"openloop {arch}", 1)
    if "crosscheck" in experiments:
        with step(record, f"crosscheck {arch}", console):
            users = breaking_users(run_dir, arch, settings.bench_ramp_users[-1])
            run_crosscheck(
                settings,
                state,
                arch,
                run_dir,
                users,
                settings.bench_crosscheck_s,
                CROSSCHECK_WARMUP_S,
                plan.ticker(f"crosscheck {arch}"),
            )


def repetition(
    settings: BenchSettings,
    state: StackState,
    arch: str,
    run_dir: Path,
    rep: int,
    plan: Plan,
    record: RunRecord,
    console: Console,
) -> None:
    """Repetition ``rep`` (from 2) of the decisive measurements of one architecture."""
    if "locust" in settings.experiments:
        with step(record, f"repeat {rep} {arch}", console):
            run_repeat(settings, state, arch, run_dir, rep)
    if "openloop" in settings.experiments:
        with step(record, f"openloop {arch} (repetition {rep})", console):
            open_loop(settings, state, arch, run_dir, rep)
    plan.update(f"repeats {arch}", rep - 1)


def runnable(settings: BenchSettings, targets: Targets) -> BenchSettings:
    """The settings of what runs against ``targets``: all of it locally; against an external target, not
    the experiments that need a restart (:data:`SKIP_REASONS`; the profile's client side runs), and the
    control only where the targets name it."""
    if targets.mode == "local":
        return settings
    experiments = [name for name in settings.experiments if name == "profile" or name not in SKIP_REASONS]
    return settings.model_copy(
        update={"experiments": experiments, "bench_control": settings.bench_control and has_control(targets)}
    )


def check_external(targets: Targets, settings: BenchSettings, console: Console) -> list[str]:
    """Before anything of an external run: every target the run needs answers its health check, or the run
    stops here (:class:`TargetDown` names the URLs); the metrics URLs that do not answer, as warnings."""
    if targets.mode == "local":
        return []
    urls = ", ".join(f"{name} {url}" for name, url in targets.urls().items())
    console.print(f"external target (started by someone else): {urls}")
    missing = check_targets(targets, health_names(targets, list(settings.architectures)))
    for problem in missing:
        console.print(f"[yellow]warning:[/yellow] {problem}: its resources will be missing")
    return missing


@contextmanager
def stack_under_test(
    settings: BenchSettings, stack: Settings, targets: Targets, console: Console
) -> Iterator[StackState]:
    """The stack the experiments run on: the local one, started here and stopped after the block; or the
    external target, started by someone else, left as it is."""
    if targets.mode == "local":
        with running_stack(with_control(stack, settings), console.log) as state:
            yield state
        return
    with external_stack(stack) as state:
        yield state


def check_external_after(targets: Targets, settings: BenchSettings) -> None:
    """The harness started and stopped nothing: the external target should be as healthy as before."""
    try:
        check_targets(targets, health_names(targets, list(settings.architectures)))
    except TargetDown as exc:
        raise RuntimeError(f"after the measurements, {exc}") from exc


def run(settings: BenchSettings, console: Console | None = None) -> Path:
    console = console or Console(stderr=True)
    targets = settings.targets()  # a bad targets file stops here, before any folder is made
    missing_metrics = check_external(targets, settings, console)
    skips = skipped(targets, list(settings.experiments), settings.runs_control())
    gate = gate_skip(targets, settings.stack_settings(), settings.bench_verify_requests)
    if gate is not None:
        skips.append(gate)
        settings = settings.model_copy(update={"bench_verify_requests": 0})
    for skip in skips:
        console.print(
            f"[yellow]skipped against the external target:[/yellow] {skip.experiment}: {skip.reason}"
        )
    settings = runnable(settings, targets)
    run_dir = new_run_dir(settings)
    record = RunRecord(run_dir, settings)
    stack = settings.stack_settings()
    console.print(f"run folder: {run_dir}")
    console.print(f"planned: about {planned_duration_s(settings) / 60:.1f} minutes")
    columns = (
        TextColumn("{task.description:<28}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeRemainingColumn(),
    )
    complete = False
    try:
        calibration = measure_machine(settings, console)
        described = environment.describe(stack, record.data["bench"], PROJECT_ROOT, calibration)
        described["target"] = stack_target(targets, skips, missing_metrics).model_dump(mode="json")
        (run_dir / "environment.json").write_text(json.dumps(described, indent=2))
        with Progress(*columns, console=console) as progress:
            plan = Plan(settings, progress)
            if "profile" in settings.experiments and targets.mode == "local":  # restarts the stack
                with step(record, "profile", console):
                    run_service_profiles(settings, run_dir, plan.update)
            with stack_under_test(settings, stack, targets, console) as state:
                if settings.bench_verify_requests:
                    verify(settings, run_dir, plan, console)
                for arch in settings.architectures:
                    first_round(settings, state, arch, run_dir, plan, record, console)
                for rep in range(2, settings.bench_repeats + 1):  # interleaved: drift hits every architecture
                    for arch in settings.architectures:
                        repetition(settings, state, arch, run_dir, rep, plan, record, console)
                if settings.runs_control():  # the async handler against the minimal control, interleaved
                    with step(record, "control", console):
                        run_control(settings, state, run_dir, plan.ticker("control"))
                if "soak" in settings.experiments:  # last on this stack: its long load ages no other number
                    for arch in settings.architectures:
                        with step(record, f"soak {arch}", console):
                            run_soak(settings, state, arch, run_dir, plan.ticker(f"soak {arch}"))
            if targets.mode == "external":
                with step(record, "external target after the measurements", console):
                    check_external_after(targets, settings)
            with step(record, "calibration after", console):
                measure_machine_again(settings, run_dir, console)
            if "burst" in settings.experiments:  # a stack per worker concurrency: after the main one stopped
                with step(record, "burst", console):
                    run_burst(settings, run_dir, plan.advancer("burst"), console.log)
            if "attribution" in settings.experiments:  # its own stacks: after the main one stopped
                with step(record, "attribution", console):
                    run_attribution(settings, run_dir, plan.advancer("attribution"), record.error)
            if "faults" in settings.experiments:  # a stack per architecture, its processes killed: last
                with step(record, "faults", console):
                    run_faults(settings, run_dir, plan.advancer("faults"), console.log)
        complete = True
    except VerificationFailed as exc:
        record.error("verification", exc)
        console.print(f"[red]stopped:[/red] {exc}")
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
