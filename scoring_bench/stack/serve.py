"""``python -m scoring_bench.stack.serve <service>``: serve one service of the registry.

This is what every container runs (its ``CMD``): it builds the argv with
:func:`scoring_bench.stack.servers.command` from the settings in the environment, exactly as the
local supervisor does, and replaces itself with it (``exec``), so the real server is the
container's main process and receives ``docker stop``'s SIGTERM itself. A setting given to
a container (``SCORING_ASYNC_WORKERS=2``) therefore reaches the server as it does with
``make up``; a command frozen into a Dockerfile would ignore it.

``python -m scoring_bench.stack.serve --check <service>`` exits 0 when the service in this container
is ready, checked as the supervisor checks it: its health URL answers 200, or, for the Celery
worker (no port), it answers a control ping through the broker. The worker's image uses it as
its HEALTHCHECK; the HTTP services' images use a lighter ``python -c`` (no settings import).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pydantic import ValidationError

from scoring_bench.core.endpoints import HEALTH_PATH
from scoring_bench.core.settings import Settings
from scoring_bench.stack.probes import check_health, check_worker
from scoring_bench.stack.servers import SERVICES, command, service

CHECK_TIMEOUT_S = 2.0


def argv(name: str, settings: Settings) -> list[str]:
    """The argv that serves ``name`` (KeyError for an unknown service)."""
    return command(service(name), settings)


def ready(name: str, settings: Settings, timeout_s: float = CHECK_TIMEOUT_S) -> bool:
    """Whether ``name``, running on this host, is ready (KeyError for an unknown service)."""
    svc = service(name)
    port = svc.port(settings)
    if port is None:
        return check_worker(settings, timeout_s)[0]
    return check_health(f"http://127.0.0.1:{port}{HEALTH_PATH}", timeout_s)[0]


def prepare_metrics_dir() -> None:
    """An empty PROMETHEUS_MULTIPROC_DIR (the images set it), as the supervisor gives each service:
    a restarted container keeps its files, which would be summed into the new process's numbers."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path:
        from scoring_bench.service.metrics import prepare_multiproc_dir

        prepare_multiproc_dir(Path(path))


def main(args: list[str] | None = None) -> int:
    args = sys.argv[1:] if args is None else args
    check = args[:1] == ["--check"]
    names = args[1:] if check else args
    if len(names) != 1 or names[0].startswith("-"):
        known = ", ".join(s.name for s in SERVICES)
        print(
            f"usage: python -m scoring_bench.stack.serve [--check] SERVICE   (one of: {known})",
            file=sys.stderr,
        )
        return 2
    try:
        settings = Settings()
        if check:
            return 0 if ready(names[0], settings) else 1
        cmd = argv(names[0], settings)
    except KeyError as exc:
        print(exc.args[0], file=sys.stderr)
        return 2
    except ValidationError as exc:
        print(f"invalid settings:\n{exc}", file=sys.stderr)
        return 2
    prepare_metrics_dir()
    print(f"serving {names[0]}: {' '.join(cmd)}", file=sys.stderr, flush=True)
    os.execv(cmd[0], cmd)
    return 1  # not reached: execv replaces this process or raises


if __name__ == "__main__":
    sys.exit(main())
