"""The seed's timeit experiment: N sequential requests per architecture from one client.

Raw client-side times go to ``timeit/<arch>.csv`` with each answer's ``Server-Timing`` header,
so the report can split a request's time into feature store, models and the rest.
"""

from __future__ import annotations

import csv
import timeit
from collections.abc import Callable
from pathlib import Path

import requests

from scoring_bench.servers import service
from scoring_bench.service_info import EXAMPLE_FEATURES
from scoring_bench.settings import Settings

WARMUP_REQUESTS = 5  # open the connection and warm the server's pools; not recorded


def scoring_url(settings: Settings, arch: str) -> str:
    svc = service(f"scoring-{arch}")
    return svc.url(settings, svc.predict_path)


def run_timeit(settings: Settings, arch: str, n: int, out_dir: Path,
               tick: Callable[[int], None] = lambda _: None) -> Path:
    """``n`` sequential requests over one keep-alive connection; returns the CSV path."""
    url = scoring_url(settings, arch)
    session = requests.Session()
    session.trust_env = False
    body = {"entity_id": "1", "features": EXAMPLE_FEATURES}
    for _ in range(WARMUP_REQUESTS):
        session.post(url, json=body, timeout=30)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{arch}.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["i", "latency_ms", "status", "server_timing"])
        for i in range(n):
            started = timeit.default_timer()
            resp = session.post(url, json=body, timeout=30)
            elapsed_ms = (timeit.default_timer() - started) * 1000.0
            writer.writerow([i, f"{elapsed_ms:.3f}", resp.status_code, resp.headers.get("Server-Timing", "")])
            tick(i + 1)
    session.close()
    return path
