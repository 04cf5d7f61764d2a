"""The local stack's optional Prometheus (``make up MONITORING=1``), without Docker.

If a ``prometheus`` binary is on the PATH (Debian's package ``prometheus``), the supervisor starts
it after the services, bound to 127.0.0.1:PROMETHEUS_PORT, with a configuration generated here that
scrapes every service's ``/metrics`` on the stack's own ports, and its data under the stack folder.
The containers' Prometheus reads monitoring/prometheus.yml instead (compose service names).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from scoring_bench.core.settings import Settings
from scoring_bench.service.metrics import METRICS_PATH
from scoring_bench.stack.servers import SERVICES

NAME = "prometheus"
READY_PATH = "/-/ready"
SCRAPE_INTERVAL = "5s"  # as monitoring/prometheus.yml: benchmark phases last seconds to minutes
INSTALL_HINT = (
    "MONITORING=1: Prometheus is not installed (Debian/Ubuntu: sudo apt-get install prometheus); "
    "going on without it"
)


def find_binary() -> str | None:
    return shutil.which(NAME)


def scrape_target(settings: Settings, port: int) -> str:
    """host:port Prometheus scrapes: the services' address (0.0.0.0 is reached on loopback)."""
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "") else settings.host
    return f"{host}:{port}"


def prometheus_config(settings: Settings) -> dict[str, Any]:
    """One scrape job per service, named as the service (as in monitoring/prometheus.yml, so the
    Grafana dashboard's queries work on both)."""
    return {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL},
        "scrape_configs": [
            {
                "job_name": svc.name,
                "metrics_path": METRICS_PATH,
                "static_configs": [{"targets": [scrape_target(settings, svc.metrics_port(settings))]}],
            }
            for svc in SERVICES
        ],
    }


def write_config(settings: Settings, folder: Path) -> Path:
    """The configuration as JSON (which is YAML: no YAML writer needed)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "prometheus.yml"
    path.write_text(json.dumps(prometheus_config(settings), indent=2) + "\n")
    return path


def command(binary: str, config: Path, data_dir: Path, settings: Settings) -> list[str]:
    return [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={data_dir}",
        f"--web.listen-address=127.0.0.1:{settings.prometheus_port}",
        "--storage.tsdb.retention.time=2d",
        "--log.level=warn",
    ]


def ready_url(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.prometheus_port}{READY_PATH}"
