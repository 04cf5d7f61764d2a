"""The local stack: start Redis and the services, wait for health, stop them.

Every process runs in its own session (process group), logs to
``<stack_dir>/logs/<name>.log`` and is recorded in ``<stack_dir>/state.json``
with its pid and start time, so ``down`` stops exactly the processes ``up``
started (a recycled pid is never signalled) and whatever they forked.

Each service gets an empty ``<stack_dir>/metrics/<name>/`` as its ``PROMETHEUS_MULTIPROC_DIR``
(scoring_bench/service/metrics.py), and with ``MONITORING=1`` a Prometheus scrapes them all
(scoring_bench/stack/monitoring.py).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil
import redis

from feature_store import embedded
from feature_store.seed import seed
from scoring_bench.core.endpoints import HEALTH_PATH
from scoring_bench.core.settings import Settings
from scoring_bench.service import metrics
from scoring_bench.stack import monitoring
from scoring_bench.stack.probes import check_health, check_ready, check_worker, http_get
from scoring_bench.stack.process_env import PROJECT_ROOT, process_env
from scoring_bench.stack.servers import Service, command, service, stack_services

REDIS_NAME = "redis"


class StackError(RuntimeError):
    """Something the user must act on; the message says what."""


@dataclass
class ProcessRecord:
    name: str
    pid: int
    create_time: float
    port: int | None  # None: the Celery worker, which listens on no port
    log: str
    health_url: str | None  # None for Redis (checked with PING) and the worker (control ping)

    def process(self) -> psutil.Process | None:
        """The live process, or None if it exited or the pid now belongs to another."""
        try:
            proc = psutil.Process(self.pid)
            if abs(proc.create_time() - self.create_time) > 0.01 or proc.status() == psutil.STATUS_ZOMBIE:
                return None
            return proc
        except psutil.Error:
            return None


@dataclass
class StackState:
    redis_url: str
    processes: list[ProcessRecord]

    @classmethod
    def load(cls, path: Path) -> StackState | None:
        try:
            raw = json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            return None
        return cls(raw["redis_url"], [ProcessRecord(**p) for p in raw["processes"]])

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(
            json.dumps(
                {"redis_url": self.redis_url, "processes": [asdict(p) for p in self.processes]}, indent=2
            )
        )
        tmp.replace(path)

    def alive(self) -> bool:
        return bool(self.processes) and all(p.process() is not None for p in self.processes)


def state_path(settings: Settings) -> Path:
    return settings.stack_dir / "state.json"


def port_is_free(host: str, port: int) -> bool:
    """True when nothing listens there (connections in TIME_WAIT don't count,
    as they don't for the servers, which set SO_REUSEADDR too)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


# A stack stopped just before may still hold a listening socket for a moment after its processes are gone
# (seen up to ~0.5 s on these machines: a LISTEN socket no process owns, after a Celery prefork worker).
PORT_RELEASE_S = 3.0


def port_frees(host: str, port: int, within_s: float = PORT_RELEASE_S) -> bool:
    """True when the port is free now or within ``within_s`` s; False when it stays in use."""
    deadline = time.monotonic() + within_s
    while not port_is_free(host, port):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def planned_ports(settings: Settings) -> dict[str, tuple[int, str]]:
    """Port per process, with the setting that moves it."""
    ports = {
        s.name: (port, f"{s.settings_key.upper()}_PORT")
        for s in stack_services(settings)
        if (port := s.port(settings)) is not None
    }
    if settings.metrics_enabled:
        ports.update(
            {
                f"{s.name} metrics": (settings.queue_worker_metrics_port, "QUEUE_WORKER_METRICS_PORT")
                for s in stack_services(settings)
                if not s.listens
            }
        )
    if settings.monitoring and monitoring.find_binary() is not None:
        ports[monitoring.NAME] = (settings.prometheus_port, "PROMETHEUS_PORT")
    if settings.redis_url is None:
        ports[REDIS_NAME] = (settings.embedded_redis_port, "EMBEDDED_REDIS_PORT")
    return ports


def log_tail(path: str | Path, lines: int = 20) -> str:
    try:
        text = Path(path).read_text(errors="replace")
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


class Supervisor:
    """Starts and stops one stack, described by one Settings object."""

    def __init__(self, settings: Settings, say: Callable[[str], None] = lambda _: None) -> None:
        self.settings = settings
        self.say = say
        self.dir = settings.stack_dir.resolve()
        self.started: list[ProcessRecord] = []

    # -- up ------------------------------------------------------------------
    def up(self) -> StackState:
        existing = StackState.load(state_path(self.settings))
        if existing is not None:
            if existing.alive():
                self.say("the stack is already running")
                return existing
            self.say("a previous stack was partly stopped: stopping what is left of it")
            stop_processes(existing.processes)
            state_path(self.settings).unlink(missing_ok=True)
        self._check_ports()
        (self.dir / "logs").mkdir(parents=True, exist_ok=True)
        try:
            redis_url = self._start_redis()
            self._seed(redis_url)
            env = self._service_env(redis_url)
            records = [(svc, self._spawn_service(svc, env)) for svc in stack_services(self.settings)]
            for svc, record in records:
                self._wait_healthy(svc, record)
            if self.settings.monitoring:
                self._start_prometheus()
        except BaseException:
            stop_processes(self.started)
            raise
        state = StackState(redis_url, self.started)
        state.save(state_path(self.settings))
        return state

    def _check_ports(self) -> None:
        planned: dict[int, str] = {}
        for name, (port, setting) in planned_ports(self.settings).items():
            if port in planned:  # the later one would fail to bind, or share the port (SO_REUSEPORT)
                raise StackError(
                    f"port {port} is planned for both {planned[port]} and {name}: choose another "
                    f"port with {setting}=..."
                )
            planned[port] = name
            if not port_frees(self.settings.host, port):
                raise StackError(
                    f"port {port} on {self.settings.host} (for {name}) is already in use by another "
                    f"process: stop it, or choose another port with {setting}=..."
                )

    def _spawn(
        self, name: str, argv: list[str], port: int | None, health_url: str | None, env: dict[str, str]
    ) -> ProcessRecord:
        log_path = self.dir / "logs" / f"{name}.log"
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=PROJECT_ROOT,
                start_new_session=True,
            )
        record = ProcessRecord(
            name, proc.pid, psutil.Process(proc.pid).create_time(), port, str(log_path), health_url
        )
        self.started.append(record)
        return record

    def _start_redis(self, fresh: bool = True) -> str:
        """The feature store's Redis: a user's (``REDIS_URL``), or the embedded one started. ``fresh``: a
        new stack's embedded Redis starts empty (its append-only file removed) unless REDIS_PERSIST asks
        to keep the data; a restarted one (``fresh`` False) reloads the file (``REDIS_AOF``)."""
        s = self.settings
        if s.redis_url is not None:
            self.say(f"feature store: {_redact(s.redis_url)} (keys under {s.redis_key_prefix!r})")
            _wait_for_redis(s.redis_url, s.health_timeout_s, None)
            return s.redis_url
        binary = embedded.find_binary(s.redis_server_bin)
        data_dir = self.dir / "redis"
        data_dir.mkdir(parents=True, exist_ok=True)
        if fresh and not s.redis_persist:
            embedded.remove_aof(data_dir)
        argv = embedded.command(binary, s.host, s.embedded_redis_port, data_dir, s.redis_persist, s.redis_aof)
        record = self._spawn(REDIS_NAME, argv, s.embedded_redis_port, None, dict(os.environ))
        self.say(f"feature store: embedded {binary} on port {s.embedded_redis_port}")
        _wait_for_redis(s.feature_store_url, s.health_timeout_s, record)
        return s.feature_store_url

    def _seed(self, redis_url: str) -> None:
        s = self.settings
        client = redis.Redis.from_url(redis_url, socket_timeout=30)
        try:
            written = seed(client, s.redis_key_prefix, s.num_entities, s.num_stored_features)
        finally:
            client.close()
        self.say(f"seeded {written} entities" if written else "feature store already seeded")

    def _queue_settings(self) -> Settings:
        """The settings with the queue's broker and result store pinned: the services are told
        REDIS_URL even for the embedded Redis, and must not take it for a user's one."""
        s = self.settings
        pinned = {"broker_url": s.queue_broker_url, "result_backend_url": s.queue_results_url}
        return s.model_copy(update=pinned)

    def _service_env(self, redis_url: str) -> dict[str, str]:
        return process_env(self._queue_settings().model_copy(update={"redis_url": redis_url}))

    def _spawn_service(self, svc: Service, env: dict[str, str]) -> ProcessRecord:
        health_url = svc.url(self.settings, HEALTH_PATH) if svc.listens else None
        if self.settings.metrics_enabled:  # set before any of its processes imports prometheus_client
            folder = metrics.prepare_multiproc_dir(self.dir / "metrics" / svc.name)
            env = {**env, metrics.MULTIPROC_ENV: str(folder)}
        return self._spawn(svc.name, command(svc, self.settings), svc.port(self.settings), health_url, env)

    def _start_prometheus(self) -> None:
        """MONITORING=1: Prometheus scraping the stack, if installed; else say how to install it."""
        binary = monitoring.find_binary()
        if binary is None:
            self.say(monitoring.INSTALL_HINT)
            return
        folder = self.dir / monitoring.NAME
        config = monitoring.write_config(self.settings, folder)
        argv = monitoring.command(binary, config, folder / "data", self.settings)
        record = self._spawn(
            monitoring.NAME,
            argv,
            self.settings.prometheus_port,
            monitoring.ready_url(self.settings),
            dict(os.environ),
        )
        deadline = time.monotonic() + self.settings.health_timeout_s
        while not check_ready(monitoring.ready_url(self.settings))[0]:
            if record.process() is None or time.monotonic() > deadline:
                raise StackError(
                    f"Prometheus did not become ready; last lines of {record.log}:\n{log_tail(record.log)}"
                )
            time.sleep(0.1)
        self.say(f"prometheus: ready on http://127.0.0.1:{self.settings.prometheus_port}")

    def _probe(self, record: ProcessRecord) -> tuple[bool, str]:
        """Is it ready: an HTTP service's health check, Prometheus's readiness, or the Celery
        worker's control ping."""
        if record.name == monitoring.NAME and record.health_url is not None:
            return check_ready(record.health_url)
        if record.health_url is not None:
            return check_health(record.health_url)
        return check_worker(self._queue_settings())

    def _wait_healthy(self, svc: Service, record: ProcessRecord) -> None:
        deadline = time.monotonic() + self.settings.health_timeout_s
        last = "no answer yet"
        while time.monotonic() < deadline:
            if record.process() is None:
                raise StackError(
                    f"{svc.name} exited during start-up; last lines of {record.log}:\n{log_tail(record.log)}"
                )
            ok, last = self._probe(record)
            if ok:
                self._check_identity(svc, record)
                self.say(f"{svc.name}: healthy" + (f" on port {record.port}" if record.port else ""))
                return
            time.sleep(0.1)
        raise StackError(
            f"{svc.name} did not become healthy within {self.settings.health_timeout_s} s "
            f"(last answer: {last}); last lines of {record.log}:\n{log_tail(record.log)}"
        )

    def _check_identity(self, svc: Service, record: ProcessRecord) -> None:
        """The health answer on its port must come from it: a port found free, then bound by another
        server before this one bound it, has that server answer (and this one exit). A service's index
        (``/``) names it; the control serves none (404), so nothing there may name a service."""
        if not svc.listens:
            return
        try:
            _, body = http_get(svc.url(self.settings, "/"), 1.0)
            answers_as = json.loads(body).get("service")
        except (OSError, ValueError, AttributeError):
            answers_as = None
        if answers_as != (None if svc.role == "control" else svc.name):
            raise StackError(
                f"port {record.port} answers as {answers_as or 'another server'}, not as {svc.name}: "
                f"another process bound it first; last lines of {record.log}:\n{log_tail(record.log)}"
            )

    def restart(self, name: str) -> ProcessRecord:
        """Stop one service of the running stack (whatever is left of it), start it again and
        wait until it is ready; ``down`` stops the new process. ``redis``: the embedded Redis, which
        reloads its append-only file (``REDIS_AOF``), and is seeded again if its features are gone."""
        state = StackState.load(state_path(self.settings))
        if state is None:
            raise StackError("the stack is not running")
        if name == REDIS_NAME:
            return self._restart_redis(state)
        svc = service(name)
        stop_processes([r for r in state.processes if r.name == name])
        record = self._spawn_service(svc, self._service_env(state.redis_url))
        state.processes = [r for r in state.processes if r.name != name] + [record]
        state.save(state_path(self.settings))
        self._wait_healthy(svc, record)
        return record

    def _restart_redis(self, state: StackState) -> ProcessRecord:
        if self.settings.redis_url is not None:
            raise StackError("REDIS_URL is set: that Redis is not the stack's to restart")
        stop_processes([r for r in state.processes if r.name == REDIS_NAME])
        self._start_redis(fresh=False)
        self._seed(state.redis_url)
        record = self.started[-1]
        # where it was: the services after it are stopped before it, as ``up`` started them
        state.processes = [record if r.name == REDIS_NAME else r for r in state.processes]
        state.save(state_path(self.settings))
        return record

    # -- down / status -------------------------------------------------------------
    def down(self) -> list[str]:
        state = StackState.load(state_path(self.settings))
        if state is None:
            return []
        stopped = stop_processes(state.processes)
        state_path(self.settings).unlink(missing_ok=True)
        return stopped

    def status(self) -> list[dict[str, Any]]:
        state = StackState.load(state_path(self.settings))
        if state is None:
            return []
        rows = []
        for record in state.processes:
            alive = record.process() is not None
            if not alive:
                health = "stopped"
            elif record.name == REDIS_NAME:
                health = "OK" if _redis_ok(state.redis_url) else "DOWN"
            else:
                health = self._probe(record)[1]
            rows.append(
                {
                    "service": record.name,
                    "port": record.port,
                    "pid": record.pid if alive else None,
                    "health": health,
                    "log": record.log,
                }
            )
        return rows


def _redis_ok(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def _wait_for_redis(url: str, timeout: float, record: ProcessRecord | None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _redis_ok(url):
            return
        if record is not None and record.process() is None:
            raise StackError(
                f"redis-server exited during start-up; last lines of {record.log}:\n{log_tail(record.log)}"
            )
        time.sleep(0.05)
    raise StackError(f"Redis at {_redact(url)} did not answer PING within {timeout} s")


def _redact(url: str) -> str:
    """A URL without its password, for messages."""
    if "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://***@{rest.rpartition('@')[2]}"


def _leftovers(record: ProcessRecord) -> list[psutil.Process]:
    """What is left of the process group of a record whose leader is gone (gunicorn workers or
    Celery pool children whose master was killed); only processes started after the leader, so
    a recycled number is never taken for ours."""
    found = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == record.pid and proc.create_time() >= record.create_time - 0.01:
                found.append(proc)
        except (psutil.Error, OSError):
            pass
    return found


def stop_processes(records: list[ProcessRecord], timeout: float = 10.0) -> list[str]:
    """SIGTERM each recorded process group, then SIGKILL what is left of the group (its leader, or any
    process it forked meanwhile); newest first. Of a record whose own process is gone, the group's
    leftovers are stopped too."""
    live = [(r, p) for r in reversed(records) if (p := r.process()) is not None]
    orphans = [p for r in records if r.process() is None for p in _leftovers(r)]
    for record, _ in live:
        _signal_group(record.pid, signal.SIGTERM)
    for orphan in orphans:
        try:
            orphan.terminate()
        except psutil.Error:
            pass
    procs = [p for _, p in live] + orphans
    children = []
    for proc in procs:
        try:
            children += proc.children(recursive=True)
        except psutil.Error:
            pass
    alive = _wait_gone(procs + children, timeout)
    # A process its group forked after the SIGTERM (a Celery prefork pool replacing the children it saw
    # die) got none, and holds what it inherited (the worker's metrics port) after its parent is gone.
    alive += [p for record, _ in live for p in _leftovers(record) if p not in alive and _running(p)]
    for record, _ in live:
        _signal_group(record.pid, signal.SIGKILL)  # a group with nobody left: nothing happens
    for proc in alive:
        try:
            proc.kill()
        except psutil.Error:
            pass
    _wait_gone(alive, 5.0)
    return [record.name for record, _ in live]


def _wait_gone(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait up to ``timeout`` s for ``procs`` to exit; return those still running. A zombie has exited: an
    orphan's (a gunicorn worker whose master went first) waits for init to reap it, which on some machines
    takes seconds, and ``psutil.wait_procs`` waited for that; a child's is reaped here."""
    deadline = time.monotonic() + timeout
    while True:
        running = [p for p in procs if _running(p)]
        if not running or time.monotonic() >= deadline:
            return running
        time.sleep(0.05)


def _running(proc: psutil.Process) -> bool:
    try:
        if proc.status() != psutil.STATUS_ZOMBIE:
            return proc.is_running()  # False: the number now belongs to another process
        if proc.ppid() == os.getpid():
            proc.wait(0)  # reap our own child
    except psutil.Error:  # gone (NoSuchProcess), or reaped meanwhile
        pass
    return False


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)  # the process was started as a session leader: pgid == pid
    except (ProcessLookupError, PermissionError):
        pass


@contextmanager
def running_stack(settings: Settings, say: Callable[[str], None] = lambda _: None) -> Iterator[StackState]:
    """The stack, up for the duration of a ``with`` block (benchmarks, tests)."""
    supervisor = Supervisor(settings, say)
    state = supervisor.up()
    try:
        yield state
    finally:
        supervisor.down()
