"""The stack's commands: ``up``, ``down``, ``status``.

``scoring-bench`` (benchmark/cli.py) adds them to its own commands; ``python -m
scoring_bench.stack.cli up`` runs them without the benchmark.
"""

from __future__ import annotations

import argparse
import sys

from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from feature_store.embedded import RedisBinaryNotFound
from scoring_bench.core.settings import Settings
from scoring_bench.service.metrics import METRICS_PATH
from scoring_bench.stack import monitoring
from scoring_bench.stack.servers import stack_services
from scoring_bench.stack.supervisor import StackError, Supervisor

COMMANDS = ("up", "down", "status")


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sub.add_parser("up", help="start Redis and the services on loopback, wait for health")
    sub.add_parser("down", help="stop exactly what `up` started")
    sub.add_parser("status", help="services, ports, pids and health")


def print_status(supervisor: Supervisor) -> int:
    rows = supervisor.status()
    if not rows:
        Console(stderr=True).print("the stack is not running (start it with `make up`)")
        return 1
    table = Table("service", "port", "pid", "health", "url")
    settings = supervisor.settings
    urls = {
        s.name: s.url(settings) if s.listens else settings.base_url(s.metrics_port(settings)) + METRICS_PATH
        for s in stack_services(settings)
    }
    urls[monitoring.NAME] = f"http://127.0.0.1:{settings.prometheus_port}"
    for row in rows:
        style = "green" if row["health"] == "OK" else "red"
        table.add_row(
            row["service"],
            str(row["port"] or "-"),
            str(row["pid"] or "-"),
            f"[{style}]{row['health']}[/{style}]",
            urls.get(row["service"], ""),
        )
    Console().print(table)
    return 0 if all(r["health"] == "OK" for r in rows) else 1


def run(command: str, console: Console) -> int:
    """One of :data:`COMMANDS`, with the settings of the environment; the exit status."""
    try:
        settings = Settings()
    except ValidationError as exc:
        console.print(f"[red]invalid settings:[/red]\n{exc}")
        return 2
    supervisor = Supervisor(settings, lambda message: console.print(f"[dim]·[/dim] {message}"))
    try:
        if command == "up":
            supervisor.up()
            return print_status(supervisor)
        if command == "down":
            stopped = supervisor.down()
            console.print(
                f"[dim]·[/dim] {'stopped ' + ', '.join(stopped) if stopped else 'nothing was running'}"
            )
            return 0
        return print_status(supervisor)
    except (StackError, RedisBinaryNotFound) as exc:
        console.print(f"[red]error:[/red] {exc}")
        return 1
    except KeyboardInterrupt:
        console.print("interrupted: everything started was stopped")
        return 130


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scoring_bench.stack.cli", description=__doc__)
    add_commands(parser.add_subparsers(dest="command", required=True))
    return run(parser.parse_args(argv).command, Console(stderr=True))


if __name__ == "__main__":
    sys.exit(main())
