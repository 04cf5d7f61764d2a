"""Fixtures that start real stacks (embedded Redis, the servers, a Celery worker) on free ports.

Every stack is stopped again when its fixture ends, whatever the test did.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests

from scoring_bench.core.settings import Settings
from scoring_bench.stack.servers import CONTROL, SERVICES, service
from scoring_bench.stack.supervisor import StackState, Supervisor
from tests.ports import free_port as free_port  # the tests' port helpers: many tests import them from here
from tests.ports import free_ports as free_ports

SEED_BODY = [5.1, 3.5, 1.4, 0.2]


# Every port a stack may open: each service's (the control's too), the worker's /metrics, the embedded
# Redis, Prometheus. A service added to the registry gets a free port here without further ado.
STACK_PORT_SETTINGS = (
    *(f"{s.settings_key}_port" for s in (*SERVICES, CONTROL) if s.listens),
    "queue_worker_metrics_port",
    "embedded_redis_port",
    "prometheus_port",
)


def stack_ports() -> dict[str, int]:
    """A free port for every port setting of a stack (``model_sync_port``: ...), all picked in one go."""
    return dict(zip(STACK_PORT_SETTINGS, free_ports(len(STACK_PORT_SETTINGS)), strict=True))


def stack_port_env() -> dict[str, int]:
    """:func:`stack_ports` by environment variable (``MODEL_SYNC_PORT``: ...), for a bench run."""
    return {name.upper(): port for name, port in stack_ports().items()}


def stack_settings(stack_dir: Path, **overrides: Any) -> Settings:
    """Settings of a test stack: its own free ports and folder, a small store."""
    values: dict[str, Any] = {
        **stack_ports(),
        "redis_url": None,
        "stack_dir": stack_dir,
        "num_entities": 200,
        "model_sync_workers": 1,
        "scoring_sync_workers": 2,
        "health_timeout_s": 30.0,
    }
    values.update(overrides)
    return Settings(**values)


class Stack:
    """A running stack and helpers to call it."""

    def __init__(self, settings: Settings, state: StackState, supervisor: Supervisor) -> None:
        self.settings = settings
        self.state = state
        self.supervisor = supervisor
        self.http = requests.Session()
        self.http.trust_env = False

    def url(self, name: str, path: str | None = None) -> str:
        svc = service(name)
        return svc.url(self.settings, svc.predict_path if path is None else path)

    def post(
        self, name: str, body: Any = None, data: bytes | str | None = None, **kw: Any
    ) -> requests.Response:
        if data is None:
            return self.http.post(self.url(name), json=body, timeout=10, **kw)
        return self.http.post(
            self.url(name), data=data, timeout=10, headers={"Content-Type": "application/json"}, **kw
        )

    def pid(self, name: str) -> int:
        return next(p.pid for p in self.state.processes if p.name == name)


@contextmanager
def start_stack(settings: Settings) -> Iterator[Stack]:
    supervisor = Supervisor(settings)
    stack: Stack | None = None
    try:
        stack = Stack(settings, supervisor.up(), supervisor)
        yield stack
    finally:
        if stack is not None:  # its keep-alive connections would hold gunicorn's graceful stop
            stack.http.close()
        supervisor.down()


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The default stack (gthread, urllib3, uvloop), shared by read-only tests. Its request read timeout is
    5 s, not 10: test_abuse.py's slow clients wait it out (a request sent at once is read in milliseconds)."""
    settings = stack_settings(tmp_path_factory.mktemp("stack"), request_read_timeout_s=5.0)
    with start_stack(settings) as running:
        yield running


@pytest.fixture(scope="module")
def metrics_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack whose every server runs several processes (gunicorn and uvicorn workers, a prefork
    Celery pool): its /metrics must sum them (prometheus-client's multiprocess mode)."""
    settings = stack_settings(
        tmp_path_factory.mktemp("metrics-stack"),
        model_sync_workers=2,
        scoring_sync_workers=2,
        model_async_workers=2,
        scoring_async_workers=2,
        scoring_batched_workers=2,
        scoring_queue_workers=2,
        queue_worker_pool="prefork",
        queue_worker_concurrency=2,
    )
    with start_stack(settings) as running:
        yield running


# The services that answer a request at once (the queue API answers 202 and has its own tests
# in test_queue.py; the Celery worker serves no HTTP).
ALL_SERVICES = [s.name for s in SERVICES if s.role in ("model", "scoring")]
SCORING_SERVICES = [s.name for s in SERVICES if s.role == "scoring"]
