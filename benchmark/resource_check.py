"""``python -m benchmark.resource_check``: server CPU per request from psutil and from the services'
metrics, measured on the same load at the same time.

The resource sampler has two sources for the services (``RESOURCE_SOURCE``, benchmark/sampler.py): psutil,
which reads the process trees of the local stack's pids, and the services' own ``process_*`` metrics,
which also work for a stack on other machines. This starts the local stack and runs one sustained Locust
phase per architecture with both samplers running at once (two CSV files:
``resources/sustained_<arch>.csv`` from metrics, ``resources/psutil/sustained_<arch>.csv`` from psutil),
then gives each architecture's server CPU per request (the sustained step's window, the analysis's own
:func:`~benchmark.analysis.phases.cpu_seconds`) from each file and their ratio. ``--psutil-only`` adds, per
architecture, the same phase sampled by psutil alone (no scraping), which shows what the scrapes
themselves cost the services, and at the end the services' CPU per scrape is measured directly (their
own counters over ``SCRAPES`` scrapes, process metrics only and whole ``/metrics``). Writes
``resource_check.json`` in the run folder.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import urllib3

from benchmark.analysis.phases import cpu_seconds, phase_steps, service_names, window_stats
from benchmark.analysis.raw import read_resources
from benchmark.load import Stage, run_phase
from benchmark.metrics_sampler import parse, process_metrics_url
from benchmark.sampler import ResourceSampler
from benchmark.settings import BenchSettings
from scoring_bench.core.settings import Settings
from scoring_bench.service.metrics import METRICS_PATH
from scoring_bench.stack.servers import stack_services
from scoring_bench.stack.supervisor import StackState, running_stack

SCRAPES = 300


def cpu_ms_per_request(
    run_dir: Path, phase: str, arch: str, csv: Path, settings: BenchSettings
) -> float | None:
    """Server CPU per request of the phase's first step, from one resource file."""
    found = phase_steps(run_dir, phase, arch)
    if found is None:
        return None
    steps, requests = found
    stats = window_stats(requests, steps[0])
    cpu = cpu_seconds(read_resources(csv), service_names(arch, settings), steps[0].window)
    return cpu * 1000 / stats.requests if cpu is not None and stats.requests else None


def both(
    settings: BenchSettings, state: StackState, arch: str, stage: Stage, run_dir: Path
) -> dict[str, Any]:
    """One sustained phase, sampled from metrics (the phase's own sampler) and by psutil (beside it)."""
    psutil_csv = run_dir / "resources" / "psutil" / f"sustained_{arch}.csv"
    pids = {p.name: [p.pid] for p in state.processes}
    with ResourceSampler(psutil_csv, lambda: pids, settings.bench_sample_interval_s):
        run_phase(settings, state, arch, "sustained", [stage], run_dir)
    metrics_csv = run_dir / "resources" / f"sustained_{arch}.csv"
    from_metrics = cpu_ms_per_request(run_dir, "sustained", arch, metrics_csv, settings)
    from_psutil = cpu_ms_per_request(run_dir, "sustained", arch, psutil_csv, settings)
    ratio = from_metrics / from_psutil if from_metrics and from_psutil else None
    return {"metrics_ms": from_metrics, "psutil_ms": from_psutil, "ratio": ratio}


def alone(settings: BenchSettings, state: StackState, arch: str, stage: Stage, run_dir: Path) -> float | None:
    """The same phase sampled by psutil only: nothing scrapes the services."""
    plain = settings.model_copy(update={"resource_source": "psutil"})
    run_phase(plain, state, arch, "sustained_psutil_only", [stage], run_dir)
    csv = run_dir / "resources" / f"sustained_psutil_only_{arch}.csv"
    return cpu_ms_per_request(run_dir, "sustained_psutil_only", arch, csv, settings)


def scrape_cost(stack: Settings, scrapes: int = SCRAPES) -> dict[str, dict[str, float]]:
    """Each service's CPU per scrape (µs, from its own counter), asking for the process metrics only and
    for the whole ``/metrics``, over one keep-alive connection."""
    http = urllib3.PoolManager(maxsize=1, retries=False)
    cost: dict[str, dict[str, float]] = {}
    for svc in stack_services(stack):
        base = stack.base_url(svc.metrics_port(stack)) + METRICS_PATH
        probe = process_metrics_url(base)
        cost[svc.name] = {}
        for label, url in (("process_only_us", probe), ("full_us", base)):
            for _ in range(10):
                http.request("GET", url)
            before = parse(http.request("GET", probe).data.decode())[0]
            for _ in range(scrapes):
                http.request("GET", url)
            after = parse(http.request("GET", probe).data.decode())[0]
            if before is not None and after is not None:
                cost[svc.name][label] = (after - before) / (scrapes + 1) * 1e6
    return cost


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmark.resource_check", description=__doc__)
    parser.add_argument("--users", type=int, default=32, help="Locust users of the sustained phase")
    parser.add_argument("--duration-s", type=float, default=30.0, help="length of the phase")
    parser.add_argument("--warmup-s", type=float, default=5.0, help="start of the phase left out")
    parser.add_argument("--psutil-only", action="store_true", help="also the phase sampled by psutil alone")
    args = parser.parse_args(argv)
    settings = BenchSettings(resource_source="metrics")
    run_dir = settings.results_dir / (settings.run_id or time.strftime("resources-%Y%m%d-%H%M%S"))
    run_dir.mkdir(parents=True, exist_ok=True)
    stage = Stage(args.users, args.duration_s, args.warmup_s)
    results: dict[str, Any] = {"users": args.users, "duration_s": args.duration_s, "warmup_s": args.warmup_s}
    with running_stack(settings.stack_settings(), print) as state:
        for arch in settings.architectures:
            results[arch] = both(settings, state, arch, stage, run_dir)
            if args.psutil_only:
                results[arch]["psutil_only_ms"] = alone(settings, state, arch, stage, run_dir)
            print(arch, json.dumps(results[arch]), flush=True)
        results["scrape_cpu"] = scrape_cost(settings.stack_settings())
        print("scrape_cpu", json.dumps(results["scrape_cpu"]), flush=True)
    (run_dir / "resource_check.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"written: {run_dir / 'resource_check.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
