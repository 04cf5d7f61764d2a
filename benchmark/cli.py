"""The console command ``scoring-bench``: the stack's commands (up, down, status: scoring_bench.stack.cli)
and the benchmark's (bench, report, compare, locust-ui)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from benchmark.external import TargetDown, TargetsError
from benchmark.load import LOCUSTFILE, USER_CLASSES
from benchmark.report import build_report, compare_runs
from benchmark.report.batched import BATCHED_TITLE, batched_sentence
from benchmark.report.differs import headline_comparisons
from benchmark.report.per_core import sustained_per_core
from benchmark.report.soak import METRIC_NAMES
from benchmark.settings import BenchSettings
from benchmark.summary import ArchitectureSummary, SchemaVersionError, Summary
from feature_store.embedded import RedisBinaryNotFound
from scoring_bench.stack import cli as stack_cli
from scoring_bench.stack.interrupts import end_child, stop_on_signals
from scoring_bench.stack.process_env import PROJECT_ROOT, process_env
from scoring_bench.stack.supervisor import StackError, port_is_free, running_stack


def _settings(args: argparse.Namespace) -> BenchSettings:
    overrides: dict[str, Any] = {}
    for option, field in (
        ("profile", "bench_profile"),
        ("experiments", "experiments"),
        ("architectures", "architectures"),
    ):
        if getattr(args, option, None):
            overrides[field] = getattr(args, option)
    if getattr(args, "targets", None):  # a targets file means an external target
        overrides.update(bench_target="external", bench_targets_file=args.targets)
    return BenchSettings(**overrides)


def headline(summary: Summary) -> Table:
    """The headline table printed at the end of a run."""
    table = Table("", *summary.architectures.keys(), title="headline")

    def row(label: str, value: Callable[[ArchitectureSummary], float | None], fmt: str = "{:.1f}") -> None:
        archs = summary.architectures.values()
        cells = [fmt.format(v) if (v := value(arch)) is not None else "-" for arch in archs]
        table.add_row(label, *cells)

    row("p50 at 1 user (ms)", lambda a: a.one_user.p50_ms if a.one_user else None)
    row("ideal p50 (ms)", lambda a: a.ideal.p50_ms if a.ideal else None)
    row("p99 at 1 user (ms)", lambda a: a.one_user.p99_ms if a.one_user else None)
    row(
        "breaking point (users)",
        lambda a: a.ramp.breaking_point.users if a.ramp and a.ramp.breaking_point else None,
        "{}",
    )
    row("max sustained (req/s)", lambda a: a.sustained.rps if a.sustained else None, "{:.0f}")
    row(
        "capacity: ramp peak (req/s)", lambda a: a.ramp.peak.rps if a.ramp and a.ramp.peak else None, "{:.0f}"
    )
    row(
        "server CPU per request (ms)",
        lambda a: a.sustained.server_cpu_ms_per_request if a.sustained else None,
        "{:.2f}",
    )
    row("  req/s per core used", lambda a: sustained_per_core(a.sustained), "{:.0f}")
    row(
        "  req/s per scoring process",
        lambda a: a.sustained.rps_per_scoring_process if a.sustained else None,
        "{:.1f}",
    )
    return table


def bench(args: argparse.Namespace, console: Console) -> int:
    settings = _settings(args)
    from benchmark.runner import run  # imports the experiments

    try:
        with stop_on_signals():  # one Ctrl-C: the runner stops the load and the stack, then reports
            run_dir = run(settings, console)
    except KeyboardInterrupt:  # before the run folder was made: nothing started yet
        console.print("interrupted before the run began")
        return 130
    _print_result(run_dir, console)
    record = json.loads((run_dir / "run.json").read_text())
    if record.get("interrupted"):
        return 130
    return 0 if record["complete"] else 1


def soak_table(summary: Summary) -> Table | None:
    """The soak's verdicts printed at the end of a run: per architecture and process, what held."""
    if summary.soak is None:
        return None
    table = Table("architecture", "process", "RSS, first → last minute", "verdict", title="soak")
    for arch, data in summary.soak.architectures.items():
        for p in data.processes:
            first, last = p.rss_mb.first_median, p.rss_mb.last_median
            rss = f"{first:.1f} → {last:.1f} MB" if first is not None and last is not None else "-"
            grew = [name for metric, name in METRIC_NAMES.items() if getattr(p, metric).steady is False]
            verdict = "not judged" if p.steady is None else "GREW: " + ", ".join(grew) if grew else "steady"
            table.add_row(arch, f"{p.service} {p.role} {p.pid}", rss, verdict)
    return table


def _print_result(run_dir: Path, console: Console) -> None:
    summary = Summary.load(run_dir)
    soak = soak_table(summary)
    if summary.experiments != ["soak"] or soak is None:
        Console().print(headline(summary))
        batching = batched_sentence(summary.comparison.batched_vs_async)
        if batching:
            Console().print(f"{BATCHED_TITLE}: {batching}", markup=False)
        for differs in headline_comparisons(summary):
            Console().print(f"{differs.a} vs {differs.b} — {differs.line}", markup=False)
    if soak is not None:
        Console().print(soak)
    console.print(f"report: {run_dir / 'report.html'}  (and report.md, summary.json)")


# The web UI's start form: 16 users, 4 per architecture with all four picked, leave each near its one-user
# latency on a 2-core machine (tried for 30 s on the 2-core AMD EPYC VM: medians async 51, batched 60, queue
# 57, sync 99 ms, no failure), so the Comparison tab compares latencies, not queues; 4 users a second reach
# them in 4 s, without a burst of new connections at the start.
UI_USERS = 16
UI_SPAWN_RATE = 4


def locust_ui_command(settings: BenchSettings) -> list[str]:
    """argv of ``scoring-bench locust-ui``'s Locust: its web UI on loopback, the class picker listing
    every architecture's user class, the start form filled with :data:`UI_USERS` and
    :data:`UI_SPAWN_RATE`. No ``--host``: each user class has its own service's URL (shown beside it in
    the class picker), and Locust's one host would override them all."""
    return [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--web-host",
        "127.0.0.1",
        "--web-port",
        str(settings.locust_ui_port),
        "--class-picker",
        "--users",
        str(UI_USERS),
        "--spawn-rate",
        str(UI_SPAWN_RATE),
        *USER_CLASSES.values(),
    ]


def locust_ui(console: Console) -> int:
    """The stack and Locust's web UI until Ctrl-C (or Locust exits): one SIGINT or SIGTERM stops Locust
    (even one spinning on a dead target) and then the stack (:mod:`scoring_bench.stack.interrupts`)."""
    settings = BenchSettings()
    port = settings.locust_ui_port
    if not port_is_free("127.0.0.1", port):
        raise StackError(
            f"port {port} (Locust's web UI) is already in use: choose another with LOCUST_UI_PORT=..."
        )
    try:
        with stop_on_signals(), running_stack(settings.stack_settings(), console.log):
            console.print(f"Locust web UI: http://127.0.0.1:{port}  (Ctrl-C stops it and the stack)")
            return _run_until_exit(locust_ui_command(settings), process_env(settings.stack_settings()))
    except KeyboardInterrupt:
        console.print("stopped: Locust and the stack")
        return 130


def _run_until_exit(argv: list[str], env: dict[str, str]) -> int:
    """Run ``argv`` until it exits; stopped (:func:`end_child`) whatever ends the wait."""
    proc: subprocess.Popen[bytes] | None = None
    try:
        proc = subprocess.Popen(argv, env=env, cwd=PROJECT_ROOT)
        return proc.wait()
    finally:
        if proc is not None:
            end_child(proc)


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bench = sub.add_parser("bench", help="start the stack, run the experiments, write the report")
    bench.add_argument("--profile", choices=["smoke", "quick", "full", "soak"], help="BENCH_PROFILE")
    bench.add_argument("--experiments", help="EXPERIMENTS, e.g. timeit,locust")
    bench.add_argument("--architectures", help="ARCHITECTURES, e.g. async")
    bench.add_argument(
        "--targets",
        type=Path,
        metavar="FILE",
        help="measure a stack started by someone else (BENCH_TARGET=external), its URLs from this YAML file "
        "(BENCH_TARGETS_FILE; doc/external.md)",
    )
    report = sub.add_parser("report", help="rebuild a run's report from its raw files")
    report.add_argument("run", type=Path, nargs="?", default=Path("results/latest"))
    compare = sub.add_parser("compare", help="compare two runs")
    compare.add_argument("run_a", type=Path)
    compare.add_argument("run_b", type=Path)
    compare.add_argument("--out", type=Path, help="folder of the comparison (default: run_b)")
    sub.add_parser(
        "locust-ui",
        help=f"start the stack and Locust's web UI (http://127.0.0.1:LOCUST_UI_PORT, 8089), its form filled "
        f"with {UI_USERS} users started {UI_SPAWN_RATE} a second; one Ctrl-C stops Locust and the stack",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scoring-bench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    stack_cli.add_commands(sub)
    add_commands(sub)
    args = parser.parse_args(argv)
    console = Console(stderr=True)
    if args.command in stack_cli.COMMANDS:
        return stack_cli.run(args.command, console)
    return run(args, console)


def run(args: argparse.Namespace, console: Console) -> int:
    try:
        if args.command == "bench":
            return bench(args, console)
        if args.command == "report":
            paths = build_report(args.run.resolve())
            _print_result(args.run, console)
            return 0 if paths else 1
        if args.command == "compare":
            out = compare_runs(args.run_a, args.run_b, args.out or args.run_b)
            console.print(f"comparison: {out}")
            return 0
        return locust_ui(console)
    except ValidationError as exc:
        if args.command in ("report", "compare"):  # a summary.json read back
            console.print(
                f"[red]a summary.json does not match the schema of benchmark/summary.py:[/red]\n{exc}"
            )
            return 1
        console.print(f"[red]invalid settings:[/red]\n{exc}")
        return 2
    except (
        StackError,
        RedisBinaryNotFound,
        FileExistsError,
        FileNotFoundError,
        SchemaVersionError,
        TargetsError,
        TargetDown,
    ) as exc:
        console.print(f"[red]error:[/red] {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
