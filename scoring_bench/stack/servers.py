"""The services of the stack and the exact command that serves each one.

The supervisor, the benchmark and the containers (``scoring_bench.stack.serve``) all take their
commands from here, so the ways of starting a service cannot drift apart.
"""

from __future__ import annotations

import socket
import sys
from dataclasses import dataclass
from typing import Any, Literal

from scoring_bench.core.endpoints import (
    ASYNC_PREDICT_PATH,
    BATCHED_PREDICT_PATH,
    QUEUE_PREDICT_PATH,
    SYNC_PREDICT_PATH,
)
from scoring_bench.core.settings import Settings

MEINHELD_WORKER = "meinheld.gmeinheld.MeinheldWorker"
# gthread with the slow-client guard (SLOW_CLIENT_GUARD; doc/limits.md says why and what it does)
GUARDED_GTHREAD_WORKER = "scoring_bench.service.gthread_guard.GuardedThreadWorker"
GUARDED_UVICORN_PROTOCOLS = {
    "httptools": "scoring_bench.service.uvicorn_guard:GuardedHttpToolsProtocol",
    "h11": "scoring_bench.service.uvicorn_guard:GuardedH11Protocol",
}
# Every service's app module builds its app with ``create_app(settings)``; the servers call this
# entry point of it, which reads the settings from the environment in the server's process.
APP_FACTORY = "from_environment"


@dataclass(frozen=True)
class Service:
    name: str
    package: str
    server: Literal["gunicorn", "uvicorn", "celery"]
    role: Literal["model", "scoring", "queue", "worker", "control"]
    predict_path: str | None  # None: serves no HTTP (the Celery worker)

    @property
    def settings_key(self) -> str:
        """``model_sync``, ``scoring_async``, ...: the prefix of its settings."""
        return self.package.removeprefix("api_")

    @property
    def listens(self) -> bool:
        """Whether it has a port and a health URL (a Celery worker has neither: it is
        ready when it answers a control ping through the broker)."""
        return self.server != "celery"

    def port(self, settings: Settings) -> int | None:
        return int(getattr(settings, f"{self.settings_key}_port")) if self.listens else None

    def metrics_port(self, settings: Settings) -> int:
        """Where its ``/metrics`` answers: its own port, or the Celery worker's metrics port."""
        port = self.port(settings)
        return settings.queue_worker_metrics_port if port is None else port

    def url(self, settings: Settings, path: str = "") -> str:
        port = self.port(settings)
        if port is None:
            raise ValueError(f"{self.name} serves no HTTP")
        return settings.service_base_url(self.name, port) + path

    def predict_url(self, settings: Settings) -> str:
        if self.predict_path is None:
            raise ValueError(f"{self.name} answers no predictions")
        return self.url(settings, self.predict_path)


# Start order: the queue API's health needs a worker that answers, so the worker comes first.
SERVICES: tuple[Service, ...] = (
    Service("model-sync", "api_model_sync", "gunicorn", "model", SYNC_PREDICT_PATH),
    Service("model-async", "api_model_async", "uvicorn", "model", ASYNC_PREDICT_PATH),
    Service("scoring-sync", "api_scoring_sync", "gunicorn", "scoring", SYNC_PREDICT_PATH),
    Service("scoring-async", "api_scoring_async", "uvicorn", "scoring", ASYNC_PREDICT_PATH),
    Service("scoring-batched", "api_scoring_batched", "uvicorn", "scoring", BATCHED_PREDICT_PATH),
    Service("queue-worker", "api_scoring_queue", "celery", "worker", None),
    Service("scoring-queue", "api_scoring_queue", "uvicorn", "queue", QUEUE_PREDICT_PATH),
)


# The benchmark's control (issue 13 §5): the async handler's API and clients, nothing else. Started
# beside the product's services only when MINIMAL_CONTROL asks (the benchmark's BENCH_CONTROL): not a
# product service.
CONTROL = Service("scoring-minimal", "api_scoring_minimal", "uvicorn", "control", ASYNC_PREDICT_PATH)


def stack_services(settings: Settings) -> tuple[Service, ...]:
    """The services a stack with ``settings`` runs, in start order: the product's, then the control."""
    return (*SERVICES, CONTROL) if settings.minimal_control else SERVICES


def service(name: str) -> Service:
    for s in (*SERVICES, CONTROL):
        if s.name == name:
            return s
    raise KeyError(f"unknown service {name!r}; known: {', '.join(s.name for s in (*SERVICES, CONTROL))}")


def gunicorn_config(name: str, settings: Settings) -> dict[str, Any]:
    """Settings for gunicorn's config file of a Flask service.

    ``reuse_port``: with one shared socket, keep-alive connections pile up on
    whichever worker accepted first and throughput swings between runs; with
    SO_REUSEPORT the kernel spreads them. ``keepalive`` outlives any client's
    idle time, so pooled connections are not reset under them. With a
    profiler on, the worker hooks start and save it (scoring_bench.service.profiling).
    """
    svc = service(name)
    key = svc.settings_key
    worker_class = getattr(settings, f"{key}_worker_class")
    config: dict[str, Any] = {
        "bind": [f"{settings.host}:{svc.port(settings)}"],
        "workers": getattr(settings, f"{key}_workers"),
        "worker_class": gunicorn_worker_class(worker_class, settings),
        "reuse_port": True,
        "keepalive": settings.keepalive_s,
        "limit_request_fields": settings.max_header_count,  # more: gunicorn answers 431
        "timeout": 30,
        "graceful_timeout": 5,
        "control_socket_disable": True,  # gunicorn >= 25: one fixed path per user otherwise
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "warning",
        "proc_name": f"scoring-bench-{name}",
    }
    if worker_class == "gthread":
        config["threads"] = getattr(settings, f"{key}_threads")
    if worker_class == "gevent":  # greenlets instead of threads: the same setting bounds them
        config["worker_connections"] = getattr(settings, f"{key}_threads")
    if settings.metrics_enabled:  # a worker's live gauges leave the sum when it exits
        from scoring_bench.service import metrics

        config["child_exit"] = metrics.child_exit
    if settings.profiler != "none":  # imported only then: no profiling code otherwise
        from scoring_bench.service import profiling

        config.update(profiling.gunicorn_hooks(settings, name))
    return config


def gunicorn_worker_class(worker_class: str, settings: Settings) -> str:
    """gunicorn's worker class for a SyncWorkerClass: gthread is the guarded one unless
    SLOW_CLIENT_GUARD is off (the others bound slow clients their own way: doc/limits.md)."""
    if worker_class == "meinheld":
        return MEINHELD_WORKER
    if worker_class == "gthread" and settings.slow_client_guard:
        return GUARDED_GTHREAD_WORKER
    return str(worker_class)


def uvicorn_http(settings: Settings, guard: bool = True) -> list[str]:
    """uvicorn's ``--http`` (the guarded protocol unless SLOW_CLIENT_GUARD is off, or ``guard`` is False:
    the control) and h11's head limit."""
    guarded = GUARDED_UVICORN_PROTOCOLS[settings.async_http]
    options = ["--http", guarded if settings.slow_client_guard and guard else settings.async_http]
    if settings.async_http == "h11":
        options += ["--h11-max-incomplete-event-size", str(settings.max_header_bytes)]
    return options


def async_loop(settings: Settings) -> str:
    """uvicorn's event loop: ASYNC_LOOP, except under pyinstrument, which cannot follow
    a request's awaits through uvloop's C loop (it would charge the model calls'
    wait to the loop), so a pyinstrument-profiled async service runs on asyncio's."""
    return "asyncio" if settings.profiler == "pyinstrument" else settings.async_loop


def worker_node_name(settings: Settings) -> str:
    """The Celery worker's node name, which the supervisor pings to know it is ready."""
    return f"{settings.queue_name}@{socket.gethostname()}"


def celery_worker_command(svc: Service, settings: Settings) -> list[str]:
    """The Celery worker: its pool, concurrency and queue from the settings. No mingle or gossip
    (nothing here uses them; mingle delays start-up). Heartbeats stay on: besides telling monitors
    the worker lives, their 2 s timer wakes the event loop, which on RabbitMQ otherwise sleeps up
    to 10 s before it notices a SIGTERM."""
    return [
        sys.executable,
        "-m",
        f"{svc.package}.worker",
        "--pool",
        settings.queue_worker_pool,
        "--concurrency",
        str(settings.queue_worker_concurrency),
        "--hostname",
        worker_node_name(settings),
        "--queues",
        settings.queue_name,
        "--without-mingle",
        "--without-gossip",
        "--loglevel",
        "warning",
    ]


def taskiq_worker_command(svc: Service, settings: Settings) -> list[str]:
    """The taskiq worker (QUEUE_ENGINE=taskiq): one asyncio process, QUEUE_WORKER_CONCURRENCY tasks."""
    return [sys.executable, "-m", f"{svc.package}.taskiq_worker", "--node", worker_node_name(settings)]


def server_of(svc: Service, settings: Settings) -> str:
    """The server that runs ``svc`` with ``settings``: the registry's, except for the scoring handlers,
    whose server is a setting apart from their framework (SCORING_SYNC_SERVER, SCORING_ASYNC_SERVER)."""
    if svc.name == "scoring-sync":
        return settings.scoring_sync_server
    if svc.name == "scoring-async":
        return settings.scoring_async_server
    return svc.server


def granian_command(svc: Service, settings: Settings) -> list[str]:
    """granian serving the service's app factory: WSGI for a Flask service, ASGI for a FastAPI one.

    The tuning its documentation names (README, "Workers and threads", "Backpressure"): worker processes
    from the service's ``*_WORKERS``; for WSGI, the blocking threads that run the Flask handler from its
    ``*_THREADS`` (the handler blocks on Redis and the model calls, so it needs as many threads as gthread
    has to overlap them; granian warns above 2 × cores + 1, which is meant here); for ASGI, the event
    loop (ASYNC_LOOP; granian runs one Python thread per worker). Backpressure (connections a worker
    takes at once; kept-alive ones count) stays granian's default unless SCORING_GRANIAN_BACKPRESSURE sets
    it. HTTP/1 only, as every other server here; the head's read timeout and buffer from
    REQUEST_READ_TIMEOUT_S and MAX_HEADER_BYTES (granian's bounds: at most 60 s, at least 8 KiB; what
    they do and do not guard: doc/limits.md). A worker that ignores SIGTERM is killed after 5 s, as
    gunicorn's ``graceful_timeout``; a worker that dies is replaced, as gunicorn and uvicorn replace theirs
    (granian's default is to stop the whole server).
    """
    wsgi = svc.server == "gunicorn"
    key = svc.settings_key
    argv = [
        sys.executable,
        "-m",
        "granian",
        "--interface",
        "wsgi" if wsgi else "asgi",
        "--factory",
        "--host",
        settings.host,
        "--port",
        str(svc.port(settings)),
        "--workers",
        str(getattr(settings, f"{key}_workers")),
    ]
    if wsgi:
        argv += ["--blocking-threads", str(getattr(settings, f"{key}_threads"))]
    else:
        argv += ["--loop", async_loop(settings)]
    if settings.scoring_granian_backpressure:
        argv += ["--backpressure", str(settings.scoring_granian_backpressure)]
    return [
        *argv,
        "--http",
        "1",
        "--no-ws",
        "--http1-header-read-timeout",
        str(min(60_000, round(settings.request_read_timeout_s * 1000))),
        "--http1-buffer-size",
        str(max(8192, settings.max_header_bytes)),
        "--workers-kill-timeout",
        "5",
        "--respawn-failed-workers",
        "--no-access-log",
        "--log-level",
        "warning",
        f"{svc.package}.app:{APP_FACTORY}",
    ]


def command(svc: Service, settings: Settings) -> list[str]:
    """argv that serves ``svc`` with its real server (the queue's worker: the engine's, QUEUE_ENGINE;
    the scoring handlers: granian where SCORING_SYNC_SERVER / SCORING_ASYNC_SERVER choose it)."""
    if svc.server == "celery":
        if settings.queue_engine == "taskiq":
            return taskiq_worker_command(svc, settings)
        return celery_worker_command(svc, settings)
    if server_of(svc, settings) == "granian":
        return granian_command(svc, settings)
    if svc.server == "gunicorn":
        return [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            f"python:{svc.package}.gunicorn_conf",
            f"{svc.package}.app:{APP_FACTORY}()",
        ]
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        f"{svc.package}.app:{APP_FACTORY}",
        "--host",
        settings.host,
        "--port",
        str(svc.port(settings)),
        "--workers",
        str(getattr(settings, f"{svc.settings_key}_workers")),
        "--loop",
        async_loop(settings),
        *uvicorn_http(settings, guard=svc.role != "control"),
        "--timeout-keep-alive",
        str(settings.keepalive_s),
        "--no-access-log",
        "--log-level",
        "warning",
    ]
