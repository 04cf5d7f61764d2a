"""``python -m scoring_bench.serve <service>``: serve one service of the registry.

This is what every container runs (its ``CMD``): it builds the argv with
:func:`scoring_bench.servers.command` from the settings in the environment, exactly as the
local supervisor does, and replaces itself with it (``exec``), so the real server is the
container's main process and receives ``docker stop``'s SIGTERM itself. A setting given to
a container (``SCORING_ASYNC_WORKERS=2``) therefore reaches the server as it does with
``make up``; a command frozen into a Dockerfile would ignore it.

``python -m scoring_bench.serve --check <service>`` exits 0 when the service in this container
is ready, checked as the supervisor checks it: its health URL answers 200, or, for the Celery
worker (no port), it answers a control ping through the broker. The worker's image uses it as
its HEALTHCHECK; the HTTP services' images use a lighter ``python -c`` (no settings import).
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

from pydantic import ValidationError

from scoring_bench.servers import SERVICES, command, service, worker_node_name
from scoring_bench.service_info import HEALTH_PATH
from scoring_bench.settings import Settings

CHECK_TIMEOUT_S = 2.0


def argv(name: str, settings: Settings | None = None) -> list[str]:
    """The argv that serves ``name`` (KeyError for an unknown service)."""
    return command(service(name), settings if settings is not None else Settings())


def ready(name: str, settings: Settings | None = None, timeout_s: float = CHECK_TIMEOUT_S) -> bool:
    """Whether ``name``, running on this host, is ready (KeyError for an unknown service)."""
    svc = service(name)
    settings = settings if settings is not None else Settings()
    if svc.listens:
        url = f"http://127.0.0.1:{svc.port(settings)}{HEALTH_PATH}"
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
        try:
            with opener.open(url, timeout=timeout_s) as resp:
                return bool(resp.status == 200)
        except (OSError, urllib.error.URLError):
            return False
    from scoring_bench import queue  # Celery is imported only to check a worker

    app = queue.make_celery(settings)
    try:
        return queue.worker_answers(app, worker_node_name(settings), timeout_s)
    finally:
        app.close()


def prepare_metrics_dir() -> None:
    """An empty PROMETHEUS_MULTIPROC_DIR (the images set it), as the supervisor gives each service:
    a restarted container keeps its files, which would be summed into the new process's numbers."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path:
        from scoring_bench.metrics import prepare_multiproc_dir

        prepare_multiproc_dir(Path(path))


def main(args: list[str] | None = None) -> int:
    args = sys.argv[1:] if args is None else args
    check = args[:1] == ["--check"]
    names = args[1:] if check else args
    if len(names) != 1 or names[0].startswith("-"):
        known = ", ".join(s.name for s in SERVICES)
        print(f"usage: python -m scoring_bench.serve [--check] SERVICE   (one of: {known})", file=sys.stderr)
        return 2
    try:
        if check:
            return 0 if ready(names[0]) else 1
        cmd = argv(names[0])
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
