"""The console command: ``scoring-bench up|down|status|bench|report|compare|locust-ui``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from feature_store.embedded import RedisBinaryNotFound
from scoring_bench import monitoring
from scoring_bench.metrics import METRICS_PATH
from scoring_bench.servers import SERVICES
from scoring_bench.settings import Settings
from scoring_bench.supervisor import StackError, Supervisor

console = Console(stderr=True)


def _say(message: str) -> None:
    console.print(f"[dim]·[/dim] {message}")


def print_status(supervisor: Supervisor) -> int:
    rows = supervisor.status()
    if not rows:
        console.print("the stack is not running (start it with `make up`)")
        return 1
    table = Table("service", "port", "pid", "health", "url")
    settings = supervisor.settings
    urls = {s.name: s.url(settings) if s.listens
            else settings.base_url(s.metrics_port(settings)) + METRICS_PATH for s in SERVICES}
    urls[monitoring.NAME] = f"http://127.0.0.1:{settings.prometheus_port}"
    for row in rows:
        style = "green" if row["health"] == "OK" else "red"
        table.add_row(row["service"], str(row["port"] or "-"), str(row["pid"] or "-"),
                      f"[{style}]{row['health']}[/{style}]", urls.get(row["service"], ""))
    Console().print(table)
    return 0 if all(r["health"] == "OK" for r in rows) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scoring-bench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="start Redis and the services on loopback, wait for health")
    sub.add_parser("down", help="stop exactly what `up` started")
    sub.add_parser("status", help="services, ports, pids and health")
    bench = sub.add_parser("bench", help="start the stack, run the experiments, write the report")
    bench.add_argument("--profile", choices=["smoke", "quick", "full"], help="BENCH_PROFILE")
    bench.add_argument("--experiments", help="EXPERIMENTS, e.g. timeit,locust")
    bench.add_argument("--architectures", help="ARCHITECTURES, e.g. async")
    report = sub.add_parser("report", help="rebuild a run's report from its raw files")
    report.add_argument("run", type=Path, nargs="?", default=Path("results/latest"))
    compare = sub.add_parser("compare", help="compare two runs")
    compare.add_argument("run_a", type=Path)
    compare.add_argument("run_b", type=Path)
    compare.add_argument("--out", type=Path, help="folder of the comparison (default: run_b)")
    sub.add_parser("locust-ui", help="start the stack and Locust's web UI (http://127.0.0.1:8089)")
    args = parser.parse_args(argv)

    if args.command in ("bench", "report", "compare", "locust-ui"):
        from benchmark import cli as bench_cli  # the benchmark's heavier imports only when needed

        return bench_cli.main(args, console)

    try:
        settings = Settings()
    except ValidationError as exc:
        console.print(f"[red]invalid settings:[/red]\n{exc}")
        return 2
    supervisor = Supervisor(settings, _say)
    try:
        if args.command == "up":
            supervisor.up()
            return print_status(supervisor)
        if args.command == "down":
            stopped = supervisor.down()
            _say("stopped " + ", ".join(stopped) if stopped else "nothing was running")
            return 0
        return print_status(supervisor)
    except (StackError, RedisBinaryNotFound) as exc:
        console.print(f"[red]error:[/red] {exc}")
        return 1
    except KeyboardInterrupt:
        console.print("interrupted: everything started was stopped")
        return 130


if __name__ == "__main__":
    sys.exit(main())
