"""A stack's ports: a port answered by another server fails the start, naming that server; a port planned
twice is refused before anything starts; the tests' port helper never hands out a port twice."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest
from werkzeug.serving import make_server

import api_model_sync.app
from scoring_bench.core.endpoints import HEALTH_PATH
from scoring_bench.core.settings import Settings
from scoring_bench.stack.servers import CONTROL, service
from scoring_bench.stack.supervisor import ProcessRecord, StackError, Supervisor, state_path
from tests import ports
from tests.integration.conftest import free_port, free_ports, stack_ports, stack_settings

pytestmark = pytest.mark.integration


@contextmanager
def model_sync_on(port: int) -> Iterator[None]:
    """The Flask model API (its real app) served from a thread on ``port``: another service's port taken."""
    server = make_server("127.0.0.1", port, api_model_sync.app.create_app(Settings(metrics_enabled=False)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        thread.join(5)


def record_of_this_process(name: str, settings: Settings, tmp_path: Path) -> ProcessRecord:
    """A started service's record whose process is alive (this one): the health wait sees it running."""
    svc = service(name) if name != CONTROL.name else CONTROL
    log = tmp_path / f"{name}.log"
    log.write_text(f"{name}: could not bind (address already in use)\n")
    port = svc.port(settings)
    me = psutil.Process(os.getpid())
    return ProcessRecord(name, me.pid, me.create_time(), port, str(log), svc.url(settings, HEALTH_PATH))


@pytest.mark.parametrize("name", ["scoring-queue", "scoring-async", "scoring-minimal"])
def test_a_port_answered_by_another_service_fails_the_start_naming_it(name: str, tmp_path: Path) -> None:
    port = free_port()
    settings = stack_settings(tmp_path, **{f"{name.replace('-', '_')}_port": port})
    supervisor = Supervisor(settings)
    record = record_of_this_process(name, settings, tmp_path)
    svc = service(name) if name != CONTROL.name else CONTROL
    with model_sync_on(port), pytest.raises(StackError) as raised:
        supervisor._wait_healthy(svc, record)  # the Flask app's health check answers 200 OK
    message = str(raised.value)
    assert message.startswith(f"port {port} answers as model-sync, not as {name}"), message
    assert "could not bind" in message  # the service's own log, which says why


def test_the_right_service_on_its_port_passes_the_check(tmp_path: Path) -> None:
    port = free_port()
    settings = stack_settings(tmp_path, model_sync_port=port)
    record = record_of_this_process("model-sync", settings, tmp_path)
    with model_sync_on(port):
        Supervisor(settings)._wait_healthy(service("model-sync"), record)


def test_a_port_planned_twice_is_refused_before_anything_starts(tmp_path: Path) -> None:
    settings = stack_settings(tmp_path)
    twice = settings.model_copy(update={"scoring_queue_port": settings.model_sync_port})
    supervisor = Supervisor(twice)
    planned_twice = f"port {settings.model_sync_port} is planned for both model-sync and scoring-queue"
    with pytest.raises(StackError, match=planned_twice):
        supervisor.up()
    assert supervisor.started == []
    assert not state_path(twice).exists()


def test_the_port_helper_never_hands_out_a_port_twice() -> None:
    handed = [*stack_ports().values(), *free_ports(50), *(free_port() for _ in range(50))]
    handed += stack_ports().values()
    assert len(handed) == len(set(handed))
    # below the ephemeral range: no outgoing connection and no bind(0) elsewhere takes one meanwhile
    assert all(ports.LOWEST <= port < ports._ephemeral_low() for port in handed)


def test_the_port_helper_skips_a_port_in_use() -> None:
    taken = ports._allocator.next  # the port the walk tries next
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", taken))
        squatter.listen()
        assert taken not in free_ports(3)
