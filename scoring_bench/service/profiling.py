"""Profiling of the services, switched on by settings when a service starts.

``PROFILER`` (a setting, never a request parameter) picks the profiler and
``PROFILE_DIR`` where each service process writes its profile when it stops,
as ``<profile_dir>/<service>-<pid>.<ext>``: the path is built from settings,
the service's own name and the pid only, never from anything a client sends.

- ``pyinstrument``: every request is profiled on its own (the profiler is per
  request: gthread workers serve requests in threads, and an asyncio
  profiler follows one task's context), and the sessions of all requests of
  the process are combined and saved as ``<service>-<pid>.pyisession``.
- ``yappi-wall`` / ``yappi-cpu``: yappi runs process-wide (all threads;
  coroutine-aware under asyncio) from worker start to worker stop, saved as
  ``<service>-<pid>.yappi-wall.pstats`` / ``.yappi-cpu.pstats`` (pstat
  format). The clock is in the name because one pstats file cannot say which
  clock it was measured with, and the merge must not mix them.
- ``none`` (the default): nothing is wrapped and neither profiler is even
  imported (they are imported lazily, here only), so the hot path pays nothing.

pyinstrument leaves health checks out (the supervisor's polling is not the
workload), and cannot follow awaits through uvloop's C event loop, so
:func:`scoring_bench.stack.servers.command` runs a pyinstrument-profiled FastAPI
service on asyncio's loop.

A process starts and stops profiling in gunicorn's worker hooks
(:func:`gunicorn_hooks`, added by :func:`scoring_bench.stack.servers.gunicorn_config`),
in the FastAPI lifespan (:func:`install_fastapi`), or in Celery's worker signals
(:func:`install_celery`: the queue's worker, where pyinstrument profiles each task and
yappi the pool's processes). After the stack is
stopped, :mod:`benchmark.profiles` merges one service's files into the run
folder's ``profiles/<arch>/`` files (doc/run-folder.md).
"""

from __future__ import annotations

import functools
import logging
import os
import re
import threading
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from scoring_bench.core.endpoints import HEALTH_PATH
from scoring_bench.core.settings import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI
    from flask import Flask
    from pyinstrument.session import Session

log = logging.getLogger("scoring_bench")

PYINSTRUMENT_SUFFIX = ".pyisession"
YAPPI_CLOCKS = {"yappi-wall": "wall", "yappi-cpu": "cpu"}
SAMPLE_INTERVAL_S = 0.001
_SERVICE_NAME = re.compile(r"[a-z0-9][a-z0-9-]*")

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[..., Awaitable[Any]], Callable[..., Awaitable[Any]]], Awaitable[None]]


class ProfilingError(RuntimeError):
    """Profiling was asked for but cannot run; the message says what to set."""


# --- settings -----------------------------------------------------------------------------


def enabled(settings: Settings) -> bool:
    return settings.profiler != "none"


def profile_dir(settings: Settings) -> Path:
    """``PROFILE_DIR``, created if missing; an error if profiling is on without it."""
    if settings.profile_dir is None:
        raise ProfilingError(
            f"PROFILER={settings.profiler} needs PROFILE_DIR: the folder where each service "
            "writes its profile when it stops"
        )
    settings.profile_dir.mkdir(parents=True, exist_ok=True)
    return settings.profile_dir


def unprofilable(settings: Settings, service: str) -> str | None:
    """Why ``service`` cannot be profiled on the server ``settings`` give it, or None when it can.

    The Flask handler on granian (``SCORING_SYNC_SERVER=granian``): granian runs a WSGI app without the
    worker hooks that start yappi and save a process's profile (gunicorn's ``post_worker_init`` and
    ``worker_exit``), and a WSGI app has no lifespan to stand in for them, so its profile would be neither
    taken nor written. The FastAPI handler on granian is profiled: granian runs its ASGI lifespan.
    """
    if service == "scoring-sync" and settings.scoring_sync_server == "granian":
        return (
            "the Flask handler on granian cannot be profiled (granian has no worker hooks to start and save "
            "a WSGI process's profile): profile it on gunicorn, SCORING_SYNC_SERVER=gunicorn"
        )
    return None


def check_service(service: str) -> str:
    if not _SERVICE_NAME.fullmatch(service):
        raise ValueError(f"not a service name: {service!r}")
    return service


# --- what one process records ---------------------------------------------------------------


class _Recorder(Protocol):
    suffix: str

    def start(self) -> None: ...
    def save(self, path: Path) -> bool: ...


class _PyinstrumentRecorder:
    """The sessions of every request of this process, combined (thread-safe).

    ``Session.combine`` concatenates sample lists, so the combined session is
    compacted (identical stacks summed) whenever it has doubled: memory stays
    bounded by the number of distinct stacks, not the number of requests.
    """

    suffix = PYINSTRUMENT_SUFFIX

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._session: Session | None = None
        self._compact_above = 20_000

    def start(self) -> None:
        """Nothing to start: each request starts its own profiler."""

    def add(self, session: Session) -> None:
        from pyinstrument.session import Session

        with self._lock:
            combined = session if self._session is None else Session.combine(self._session, session)
            if len(combined.frame_records) > self._compact_above:
                combined.frame_records = compact_records(combined.frame_records)
                self._compact_above = max(20_000, 2 * len(combined.frame_records))
            self._session = combined

    def save(self, path: Path) -> bool:
        with self._lock:
            session, self._session = self._session, None
        if session is None:
            return False
        session.frame_records = compact_records(session.frame_records)
        _write_atomically(path, session.save)
        return True


class _YappiRecorder:
    """yappi over the whole process, every thread (``greenlets``: every greenlet, for gevent's
    pool), from start() to save()."""

    def __init__(self, profiler: str, greenlets: bool = False) -> None:
        self.clock = YAPPI_CLOCKS[profiler]
        self.suffix = f".{profiler}.pstats"
        self.greenlets = greenlets

    def start(self) -> None:
        import yappi

        if not yappi.is_running():
            yappi.set_clock_type(self.clock)
            if self.greenlets:
                yappi.set_context_backend("greenlet")
            yappi.start(builtins=False, profile_threads=True)

    def save(self, path: Path) -> bool:
        import yappi

        yappi.stop()
        stats = yappi.get_func_stats()
        if stats.empty():
            return False
        _write_atomically(path, lambda tmp: stats.save(str(tmp), type="pstat"))
        yappi.clear_stats()
        return True


def compact_records(records: Iterable[tuple[list[str], float]]) -> list[tuple[list[str], float]]:
    """pyinstrument frame records with identical stacks summed (order is irrelevant
    once sessions are combined: they are no longer a timeline)."""
    merged: dict[tuple[str, ...], float] = {}
    for stack, seconds in records:
        key = tuple(stack)
        merged[key] = merged.get(key, 0.0) + seconds
    return [(list(stack), seconds) for stack, seconds in merged.items()]


def _write_atomically(path: Path, write: Callable[[Path], Any]) -> None:
    """Write next to ``path`` then rename, so a reader never sees half a profile."""
    tmp = path.with_name(path.name + ".partial")
    write(tmp)
    os.replace(tmp, path)


@dataclass
class _ProcessProfile:
    service: str
    directory: Path
    recorder: _Recorder
    finished: bool = False

    @property
    def path(self) -> Path:
        """Computed when written: a gunicorn worker's pid, not its master's."""
        return self.directory / f"{self.service}-{os.getpid()}{self.recorder.suffix}"

    def finish(self) -> Path | None:
        if self.finished:
            return None
        self.finished = True
        path = self.path
        if not self.recorder.save(path):
            log.info("profiling: %s recorded nothing, no profile written", self.service)
            return None
        log.info("profiling: %s wrote %s", self.service, path)
        return path


_process: _ProcessProfile | None = None


def _process_profile(settings: Settings, service: str, greenlets: bool = False) -> _ProcessProfile:
    """This process's profile, made on first use (the app import or a worker hook)."""
    global _process
    if _process is None:
        recorder: _Recorder
        if settings.profiler == "pyinstrument":
            recorder = _PyinstrumentRecorder()
        else:
            recorder = _YappiRecorder(settings.profiler, greenlets)
        _process = _ProcessProfile(check_service(service), profile_dir(settings), recorder)
    return _process


def start_process(settings: Settings, service: str) -> None:
    """Start this process's profiling (a worker started)."""
    if enabled(settings):
        _process_profile(settings, service).recorder.start()


def finish_process() -> Path | None:
    """Stop this process's profiling and write its file; the path, or None if
    nothing was profiled here (e.g. a gunicorn master)."""
    global _process
    profile, _process = _process, None
    return profile.finish() if profile is not None else None


# --- wiring into the servers ------------------------------------------------------------------


def gunicorn_hooks(settings: Settings, service: str) -> dict[str, Callable[..., None]]:
    """``post_worker_init`` / ``worker_exit`` for a gunicorn config (fails at start-up
    when profiling is on without PROFILE_DIR)."""
    if not enabled(settings):
        return {}
    profile_dir(settings)
    check_service(service)

    def post_worker_init(worker: Any) -> None:
        start_process(settings, service)

    def worker_exit(server: Any, worker: Any) -> None:
        finish_process()

    return {"post_worker_init": post_worker_init, "worker_exit": worker_exit}


def install_flask(app: Flask, settings: Settings, service: str) -> None:
    """Profile each request of a Flask app with pyinstrument; nothing when PROFILER=none.
    (yappi needs no wrapping: the gunicorn worker hooks start and save it.) Where the server cannot save
    the profile (:func:`unprofilable`), the app is left unwrapped, and says so."""
    reason = unprofilable(settings, service) if enabled(settings) else None
    if reason is not None:
        log.warning("%s: PROFILER=%s ignored: %s", service, settings.profiler, reason)
        return
    if settings.profiler != "pyinstrument":
        if enabled(settings):
            _process_profile(settings, service)  # fail now, not at the first request
        return
    recorder = _process_profile(settings, service).recorder
    assert isinstance(recorder, _PyinstrumentRecorder)
    app.wsgi_app = _PyinstrumentWSGI(app.wsgi_app, recorder)  # type: ignore[method-assign]


def install_fastapi(app: FastAPI, settings: Settings, service: str) -> None:
    """Profile a FastAPI app: start/stop in its lifespan, and with pyinstrument a
    per-request ASGI middleware; nothing when PROFILER=none."""
    if not enabled(settings):
        return
    profile = _process_profile(settings, service)
    if isinstance(profile.recorder, _PyinstrumentRecorder):
        app.add_middleware(_PyinstrumentASGI, recorder=profile.recorder)
    app.router.lifespan_context = _profiled_lifespan(app.router.lifespan_context, settings, service)


def install_celery(settings: Settings, service: str) -> None:
    """Profile the Celery worker of this process (the queue's); nothing when PROFILER=none.

    The profile lives where the tasks run: in each child of a prefork pool (``worker_process_init`` /
    ``worker_process_shutdown``), else in the worker's own process, whose threads or greenlets run them
    (``worker_init`` / ``worker_shutdown``: the threads, gevent and solo pools). yappi then runs over that
    whole process, Celery's consumer, acks and result writes included (gevent: per greenlet).
    pyinstrument profiles each task from ``task_prerun`` to ``task_postrun`` on the thread that runs it
    (the result's write is inside, the broker's fetch and ack are not); under gevent a task's thread is
    every greenlet's, so there each task's profile also holds the others' (use yappi there).
    """
    if not enabled(settings):
        return
    from celery import signals

    prefork = settings.queue_worker_pool == "prefork"
    greenlets = settings.queue_worker_pool == "gevent"
    _process_profile(settings, service, greenlets)  # fail now (PROFILE_DIR), not in a worker
    if settings.profiler == "pyinstrument" and greenlets:
        log.warning("profiling: pyinstrument under the gevent pool mixes the tasks' greenlets; use yappi")

    def start(**_: Any) -> None:
        start_process(settings, service)

    def finish(**_: Any) -> None:
        finish_process()

    begin, end = (
        (signals.worker_process_init, signals.worker_process_shutdown)
        if prefork
        else (signals.worker_init, signals.worker_shutdown)
    )
    if prefork:
        _forget_inherited()
    begin.connect(start, weak=False, dispatch_uid=f"profiling-start-{service}")
    end.connect(finish, weak=False, dispatch_uid=f"profiling-finish-{service}")
    if settings.profiler == "pyinstrument":
        tasks = _PyinstrumentTasks(settings, service)
        signals.task_prerun.connect(tasks.prerun, weak=False, dispatch_uid=f"profiling-prerun-{service}")
        signals.task_postrun.connect(tasks.postrun, weak=False, dispatch_uid=f"profiling-postrun-{service}")


def _forget_inherited() -> None:
    """A prefork child makes its own profile (its pid in the file name, its own samples): the one made
    in the parent to check the settings is not carried over."""
    global _process
    _process = None


class _PyinstrumentTasks:
    """One pyinstrument profiler per task run, on the thread running it, added to the process's
    recorder when the task ends (a task that never reaches ``task_postrun`` is not recorded)."""

    def __init__(self, settings: Settings, service: str) -> None:
        self.settings = settings
        self.service = service
        self._running = threading.local()

    def prerun(self, task_id: str | None = None, **_: Any) -> None:
        from pyinstrument import Profiler

        profiler = Profiler(interval=SAMPLE_INTERVAL_S, async_mode="disabled")
        profiler.start()
        self._running.profiler = profiler

    def postrun(self, task_id: str | None = None, **_: Any) -> None:
        profiler = getattr(self._running, "profiler", None)
        if profiler is None:
            return
        self._running.profiler = None
        session = profiler.stop()
        recorder = _process_profile(self.settings, self.service).recorder
        if isinstance(recorder, _PyinstrumentRecorder):
            recorder.add(session)


class _PyinstrumentWSGI:
    """One pyinstrument profiler per request, on the worker thread serving it."""

    def __init__(self, app: Callable[..., Iterable[bytes]], recorder: _PyinstrumentRecorder) -> None:
        from pyinstrument import Profiler

        self.app = app
        self.recorder = recorder
        self.profiler_class = Profiler

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == HEALTH_PATH:
            return self.app(environ, start_response)
        profiler = self.profiler_class(interval=SAMPLE_INTERVAL_S, async_mode="disabled")
        profiler.start()
        try:
            return self.app(environ, start_response)
        finally:
            self.recorder.add(profiler.stop())


class _PyinstrumentASGI:
    """One pyinstrument profiler per HTTP request, following the request's async
    context: time the request spends awaiting is charged to the awaiting frame."""

    def __init__(self, app: ASGIApp, recorder: _PyinstrumentRecorder) -> None:
        from pyinstrument import Profiler

        self.app = app
        self.recorder = recorder
        self.profiler_class = Profiler

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("path") == HEALTH_PATH:
            await self.app(scope, receive, send)
            return
        _use_await_remembering_sampler()
        profiler = self.profiler_class(interval=SAMPLE_INTERVAL_S, async_mode="enabled")
        profiler.start()
        try:
            await self.app(scope, receive, send)
        finally:
            self.recorder.add(profiler.stop())


@functools.cache
def _await_remembering_sampler() -> type:
    """pyinstrument's per-thread stack sampler, charging a request's waits to its last await.

    In async mode pyinstrument charges the time a request spends outside its
    context to the ``await`` that left it, but only when the context was left
    straight from a coroutine. Under uvicorn the request's context is also
    entered and left by plain callbacks it scheduled (future and transport
    callbacks run in a copy of its context); after one of those, pyinstrument
    charges the rest of the wait to whatever the event loop is doing
    (``epoll.poll``), and a request waiting on its model calls looks like
    event-loop time. The request is still waiting on the same await then, so
    this sampler keeps charging that await. (pyinstrument internals, pinned in
    constraints.txt; the integration test checks the attribution.)
    """
    from pyinstrument.stack_sampler import AsyncState, StackSampler, StackSamplerSubscriber

    def remember_or_restore(subscriber: StackSamplerSubscriber) -> None:
        state = subscriber.async_state
        if state is not None and state.state == "out_of_context_awaited":
            subscriber.last_await = state.info  # type: ignore[attr-defined]
        elif state is not None and state.state == "out_of_context_unknown":
            last_await = getattr(subscriber, "last_await", None)
            if last_await is not None:
                subscriber.async_state = AsyncState("out_of_context_awaited", info=last_await)

    class AwaitRememberingSampler(StackSampler):
        def _sample(self, frame: Any, event: str, arg: Any) -> None:
            super()._sample(frame, event, arg)
            if event == "context_changed":
                for subscriber in self.subscribers:
                    if subscriber.target == arg[1]:  # the context that was left
                        remember_or_restore(subscriber)

    return AwaitRememberingSampler


def _use_await_remembering_sampler() -> None:
    """Make this thread's sampler an AwaitRememberingSampler, unless a profiler
    that is not ours is already running on it."""
    from pyinstrument import stack_sampler

    cls = _await_remembering_sampler()
    current = getattr(stack_sampler.thread_locals, "stack_sampler", None)
    if current is None or (not isinstance(current, cls) and not current.subscribers):
        stack_sampler.thread_locals.stack_sampler = cls()


def _profiled_lifespan(inner: Callable[[Any], Any], settings: Settings, service: str) -> Callable[[Any], Any]:
    @asynccontextmanager
    async def lifespan(app: Any) -> Any:
        start_process(settings, service)
        if settings.profiler == "pyinstrument":
            _warn_if_uvloop()
        try:
            async with inner(app) as state:
                yield state
        finally:
            finish_process()

    return lifespan


def _warn_if_uvloop() -> None:
    import asyncio

    if type(asyncio.get_running_loop()).__module__.startswith("uvloop"):
        log.warning(
            "profiling: pyinstrument cannot follow awaits under uvloop; the model calls' "
            "wait will show as event-loop time (scoring_bench.stack.servers runs it with --loop asyncio)"
        )
