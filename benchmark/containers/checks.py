"""What is asked of the running stack: the README's curl calls, then a short Locust load per
scoring handler.

The curl calls are read from README.md itself (every ``curl`` line aimed at a service's default
port), so the documentation is what is checked; each is run with the service's port of the test's
port set, and must succeed (HTTP status below 400) with a JSON body, or, piped into ``grep``, with
the pattern in the output. The load is the benchmark's own locustfile, a few users for a few seconds
per architecture, run from the host: every response is checked by the locustfile (a 200 and a score
in [0, 1]), and any failure fails the test.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from benchmark.containers.settings import ROOT
from benchmark.load import USER_CLASSES
from scoring_bench.core.settings import Settings

CURL_LINE = re.compile(r"^curl .*$", re.MULTILINE)
URL = re.compile(r"http://(?:localhost|127\.0\.0\.1):(\d+)")


def port_map(ports: dict[str, str]) -> dict[int, int]:
    """Each default port -> its port in the test's set (the port settings of the same names)."""
    defaults = Settings.model_construct()
    return {
        int(getattr(defaults, field)): int(ports[field.upper()])
        for field in Settings.model_fields
        if field.endswith("_port") and field.upper() in ports
    }


@dataclass
class CurlCall:
    readme: str  # the line as the README has it
    argv: list[str]  # curl's arguments, aimed at the test's ports
    grep: str | None  # the pattern of a `| grep PATTERN`, if any


def readme_calls(ports: dict[int, int], readme: Path = ROOT / "README.md") -> list[CurlCall]:
    calls = []
    for line in CURL_LINE.findall(readme.read_text()):
        command, _, piped = line.partition("|")
        match = URL.search(command)
        if not match or int(match.group(1)) not in ports:
            continue
        aimed = URL.sub(lambda m: f"http://127.0.0.1:{ports.get(int(m.group(1)), int(m.group(1)))}", command)
        grep = shlex.split(piped)[-1] if piped.strip().startswith("grep") else None
        calls.append(CurlCall(line.strip(), shlex.split(aimed)[1:], grep))
    return calls


def run_curl(call: CurlCall) -> str:
    """The call's body; raises if curl fails, the status is 400 or more, or the answer is not what
    the README promises (JSON, or the grep pattern)."""
    argv = ["curl", "-sS", "--fail-with-body", "--max-time", "15", "--noproxy", "*", *call.argv]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        raise RuntimeError(
            f"{call.readme}: curl exit {out.returncode}: {out.stderr.strip()} {out.stdout[:300]}"
        )
    body = out.stdout
    if call.grep is not None:
        if call.grep not in body:
            raise RuntimeError(f"{call.readme}: no {call.grep!r} in the answer")
        return call.grep
    text = body.split("\n\n", 1)[-1] if "-i" in call.argv else body  # -i: headers first (text mode: \n)
    try:
        json.loads(text)
    except ValueError:
        raise RuntimeError(f"{call.readme}: the answer is not JSON: {body[:300]!r}") from None
    return text.strip()


def run_load(arch: str, ports: dict[str, str], out_dir: Path, users: int, seconds: int) -> dict[str, float]:
    """Locust headless against one architecture's handler; its aggregated numbers (requests,
    failures, req/s). Raises if a request failed or none was made."""
    out_dir.mkdir(parents=True, exist_ok=True)
    # the stack's settings from this shell (SERVICE_URLS, another port, ...) would aim it elsewhere
    settings = {name.upper() for name in Settings.model_fields}
    env = {
        k: v
        for k, v in os.environ.items()
        if k.upper() not in settings and not k.startswith(("LOCUST_", "BENCH_"))
    }
    env.update(ports)
    env.update({"HOST": "127.0.0.1", "LOCUST_ARCHITECTURE": arch, "LOCUST_PHASE": "docker-test"})
    argv = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        "benchmark/locustfile.py",
        "--headless",
        "--only-summary",
        "-u",
        str(users),
        "-r",
        str(users),
        "-t",
        f"{seconds}s",
        "--csv",
        str(out_dir / arch),
        USER_CLASSES[arch],
    ]
    log_path, stats = out_dir / f"{arch}.log", out_dir / f"{arch}_stats.csv"
    with log_path.open("w") as log:
        code = subprocess.run(
            argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=seconds + 120
        ).returncode
    if not stats.exists():
        raise RuntimeError(f"load on {arch}: Locust exited {code} without its statistics (see {log_path})")
    with stats.open() as f:
        rows = list(csv.DictReader(f))
    total = next(r for r in rows if r["Name"] == "Aggregated")
    result = {
        "requests": float(total["Request Count"]),
        "failures": float(total["Failure Count"]),
        "requests_per_s": round(float(total["Requests/s"]), 1),
        "p50_ms": float(total["50%"] or 0),
    }
    if result["requests"] == 0 or result["failures"] > 0:
        raise RuntimeError(f"load on {arch}: {result} (see {out_dir / arch}.log)")
    return result
