"""The generator as its own process (so its CPU is sampled apart from the stack's, like Locust's)::

    python -m benchmark.openloop sweep  --arch sync --url URL --out DIR --rates 50,100 --step-s 10 \\
        [--arrivals poisson|constant] [--seed 0] [--connections 256] [--rep 0] [--entities N] [--pause-s 1]
    python -m benchmark.openloop closed --arch sync --url URL --out DIR --users 64 --duration-s 10 \\
        [--warmup-s 1] [--entities N]

``--url``: the predict URL (sync, async, batched) or the queue API's base URL (queue). The files it writes are
described in :mod:`benchmark.openloop.records`.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import uvloop

from benchmark.openloop.generator import Sweep, Target, closed_loop, sweep
from benchmark.openloop.schedule import ARRIVALS, Arrivals


def rates(text: str) -> list[float]:
    values = [float(v) for v in text.split(",") if v.strip()]
    if not values or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError(f"rates must be positive numbers, comma-separated (got {text!r})")
    return values


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="python -m benchmark.openloop", description=__doc__.split("\n")[0])
    commands = main.add_subparsers(dest="command", required=True)
    for name in ("sweep", "closed"):
        sub = commands.add_parser(name)
        sub.add_argument("--arch", required=True, choices=("sync", "async", "batched", "queue"))
        sub.add_argument("--url", required=True)
        sub.add_argument("--out", required=True, type=Path, help="the folder of its files")
        sub.add_argument("--entities", type=int, default=1, help="request i reads entity i % entities")
        sub.add_argument(
            "--timeout-s", type=float, default=30.0, help="a request (task) not done by then: no answer"
        )
        sub.add_argument("--poll-wait-ms", type=int, default=1000, help="queue: ?wait_ms= of each poll")
        sub.add_argument("--submit-wait-ms", type=int, default=0, help="queue: ?wait_ms= of the submit")
        if name == "sweep":
            sub.add_argument("--rates", required=True, type=rates, help="offered rates (req/s), in order")
            sub.add_argument("--step-s", required=True, type=float, help="seconds per rate")
            sub.add_argument("--arrivals", default="poisson", choices=ARRIVALS)
            sub.add_argument("--seed", type=int, default=0)
            sub.add_argument("--connections", type=int, default=256, help="the connection limit")
            sub.add_argument("--rep", type=int, default=0)
            sub.add_argument("--pause-s", type=float, default=1.0, help="between two rates")
        else:
            sub.add_argument("--users", required=True, type=int)
            sub.add_argument("--duration-s", required=True, type=float)
            sub.add_argument("--warmup-s", type=float, default=1.0)
    return main


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if args.command == "sweep":
        target = Target(
            args.arch, args.url, args.connections, args.timeout_s, args.poll_wait_ms, args.submit_wait_ms
        )
        arrivals: Arrivals = args.arrivals
        plan = Sweep(args.rates, args.step_s, arrivals, args.seed, args.pause_s, args.rep, args.entities)
        uvloop.run(sweep(target, plan, args.out))
    else:
        target = Target(
            args.arch, args.url, args.users, args.timeout_s, args.poll_wait_ms, args.submit_wait_ms
        )
        uvloop.run(closed_loop(target, args.users, args.duration_s, args.warmup_s, args.entities, args.out))


if __name__ == "__main__":
    main()
