"""The console command: ``scoring-bench up|down|status``."""

from __future__ import annotations

import argparse
import sys

from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from feature_store.embedded import RedisBinaryNotFound
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
    urls = {s.name: s.url(supervisor.settings) for s in SERVICES}
    for row in rows:
        style = "green" if row["health"] == "OK" else "red"
        table.add_row(row["service"], str(row["port"]), str(row["pid"] or "-"),
                      f"[{style}]{row['health']}[/{style}]", urls.get(row["service"], ""))
    Console().print(table)
    return 0 if all(r["health"] == "OK" for r in rows) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scoring-bench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="start Redis and the services on loopback, wait for health")
    sub.add_parser("down", help="stop exactly what `up` started")
    sub.add_parser("status", help="services, ports, pids and health")
    args = parser.parse_args(argv)

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
