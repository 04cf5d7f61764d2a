"""After a profiled run: merge each service's profiles into the run folder, and break them down.

The services write one profile per process (``scoring_bench.service.profiling``:
``<service>-<pid>.pyisession`` or ``<service>-<pid>.yappi-<clock>.pstats``); :func:`collect`
merges one service's files into ``profiles/<arch>/`` (doc/run-folder.md) and computes the
breakdown of its wall time (:func:`breakdown`); :func:`profile_client` profiles the client side
of a call.
"""

from __future__ import annotations

import json
import os
import pstats
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from scoring_bench.core import schemas
from scoring_bench.service import (
    batcher,
    queue,
    scorer_async,
    scorer_batched,
    scorer_sync,
    task_events,
    task_store,
)
from scoring_bench.service.profiling import (
    PYINSTRUMENT_SUFFIX,
    SAMPLE_INTERVAL_S,
    YAPPI_CLOCKS,
    check_service,
)

if TYPE_CHECKING:
    from pyinstrument.frame import Frame
    from pyinstrument.session import Session

CATEGORIES = ("model_calls", "feature_store", "json_validation", "queue", "framework")


def _service_files(profile_dir: Path, service: str, suffix: str) -> list[Path]:
    """``<service>-<pid><suffix>`` files, and no other service's (pid: digits only)."""
    pattern = re.compile(re.escape(check_service(service)) + r"-\d+" + re.escape(suffix))
    return sorted(p for p in profile_dir.glob(f"{service}-*{suffix}") if pattern.fullmatch(p.name))


def combine_sessions(paths: Iterable[Path]) -> Session | None:
    from pyinstrument.session import Session

    combined: Session | None = None
    for path in paths:
        session = Session.load(path)
        combined = session if combined is None else Session.combine(combined, session)
    return combined


def collect(profile_dir: Path, service: str, out_dir: Path) -> dict[str, Any]:
    """Merge the profiles one service's processes wrote into ``profile_dir`` (run
    after the stack has stopped) into ``out_dir``:

    - all ``<service>-*.pyisession`` → ``pyinstrument.html``, ``pyinstrument.txt``
      and ``breakdown.json`` (see :func:`breakdown`);
    - all ``<service>-*.yappi-wall.pstats`` → ``yappi-wall.pstats``, and the same
      for ``yappi-cpu``.

    Returns ``{"breakdown": <breakdown.json's content, or None>, "written": [paths]}``.
    Raises FileNotFoundError when ``profile_dir`` holds no profile of ``service``.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    result: dict[str, Any] = {"breakdown": None, "written": written}
    session = combine_sessions(_service_files(profile_dir, service, PYINSTRUMENT_SUFFIX))
    if session is not None:
        result["breakdown"] = breakdown(session)
        written += write_session_reports(session, out_dir)
        written.append(_write_json(out_dir / "breakdown.json", result["breakdown"]))
    for profiler in YAPPI_CLOCKS:
        merged = merge_pstats(
            _service_files(profile_dir, service, f".{profiler}.pstats"), out_dir / f"{profiler}.pstats"
        )
        if merged is not None:
            written.append(merged)
    if not written:
        raise FileNotFoundError(
            f"no profile of {service} in {profile_dir}: was the stack started with PROFILER and "
            "PROFILE_DIR set, sent requests, and stopped?"
        )
    return result


def write_session_reports(session: Session, out_dir: Path) -> list[Path]:
    """``pyinstrument.html`` (interactive, self-contained) and ``pyinstrument.txt``."""
    from pyinstrument.renderers import ConsoleRenderer, HTMLRenderer

    html = out_dir / "pyinstrument.html"
    txt = out_dir / "pyinstrument.txt"
    html.write_text(HTMLRenderer().render(session), encoding="utf-8")
    txt.write_text(ConsoleRenderer(unicode=True, color=False).render(session), encoding="utf-8")
    return [html, txt]


def merge_pstats(paths: list[Path], out: Path) -> Path | None:
    """One pstats file summing ``paths`` (None when there are none)."""
    if not paths:
        return None
    stats = pstats.Stats(str(paths[0]))
    for path in paths[1:]:
        stats.add(str(path))
    stats.dump_stats(str(out))
    return out


def _write_json(path: Path, value: Any) -> Path:
    path.write_text(json.dumps(value, indent=2) + "\n", encoding="utf-8")
    return path


# --- the breakdown ---------------------------------------------------------------------------------


def _source(module: ModuleType) -> str:
    """A module's file as a path relative to the project ("scoring_bench/core/schemas.py"): frames
    name absolute paths, which differ between machines and containers."""
    return module.__name__.replace(".", "/") + ".py"


# Taken from the code itself, so a renamed scorer, client method or module fails here, at import,
# instead of silently moving time into "framework".
_SCORERS = (_source(scorer_sync), _source(scorer_async), _source(scorer_batched))
MODEL_CALL_FUNCTIONS = frozenset(
    method.__name__
    for method in (
        scorer_sync.SyncScorer._call_models,  # with a thread pool, the wait for the calls' threads
        scorer_sync.Urllib3ModelClient.predict,
        scorer_sync.RequestsModelClient.predict,
        scorer_async.AiohttpModelClient.predict,
        scorer_async.HttpxModelClient.predict,
        scorer_async.AiohttpModelClient.predict_batch,
        scorer_async.HttpxModelClient.predict_batch,
        scorer_batched.BatchedScorer.call_batch,  # the batching handler's model call: one per batch
    )
)
# The batching handler's model calls are its batches: a request's wait for its batch to be sent and for
# the batch call's answer is in the micro-batcher (its submit, its send, the call's task), all of it.
_BATCHER_FILES = (_source(batcher),)
FEATURE_STORE_FUNCTIONS = frozenset(
    method.__name__
    for method in (scorer_sync.SyncScorer.read_features, scorer_async.AsyncScorer.read_features)
)
MODEL_CALL_PACKAGES = frozenset({"urllib3", "requests", "aiohttp", "httpx", "httpcore"})
FEATURE_STORE_PACKAGES = frozenset({"redis"})
JSON_PACKAGES = frozenset({"json", "orjson", "pydantic", "pydantic_core"})
_JSON_FILES = (_source(schemas),)
# The queue's own machinery: Celery and its transport, the API's issued-id store and wake-ups, and the
# API's publish and result reads; the worker's task bodies are the handler's code again.
QUEUE_PACKAGES = frozenset({"celery", "kombu", "amqp", "billiard", "vine"}) | {"taskiq", "taskiq_redis"}
_QUEUE_FILES = (
    _source(queue),
    _source(task_store),
    _source(task_events),
    "scoring_bench/service/queue_taskiq.py",
)
# The queue's services sit above the benchmark's layer (it may not import them): their files and the API's
# Queue methods by name, checked against the code by tests/unit/test_profiling.py.
QUEUE_API_FILE = "api_scoring_queue/app.py"
# (the engines' publish is in scoring_bench/service/queue.py and queue_taskiq.py, queue files as a whole)
QUEUE_API_FUNCTIONS = frozenset({"submit", "document", "_republish"})
QUEUE_WORKER_FILE = "api_scoring_queue/worker.py"
# C functions appear as "<built-in>" frames named by their __qualname__ only
_JSON_BUILTINS = frozenset({"dumps", "loads", "from_json", "to_json"})
_JSON_BUILTIN_PREFIXES = ("SchemaValidator.", "SchemaSerializer.")
_STDLIB_PACKAGE = re.compile(r"/python3\.\d+/([^/]+)/")


def library_package(path: str) -> str | None:
    """The top-level package of an installed or standard-library file, else None."""
    for marker in ("/site-packages/", "/dist-packages/"):
        _, found, rest = path.rpartition(marker)
        if found:
            return rest.split("/", 1)[0] if "/" in rest else None
    match = _STDLIB_PACKAGE.search(path)
    return match.group(1) if match else None


def frame_category(function: str, file_path: str | None) -> str | None:
    """The category a frame names by itself, or None (it inherits its caller's)."""
    if not file_path:
        return None  # [self], [await], [out-of-context]: time of their parent
    path = file_path.replace(os.sep, "/")
    if path.endswith(QUEUE_WORKER_FILE):
        return "framework"  # a task's own code (under Celery's frames): the handler's again
    if path.endswith(_QUEUE_FILES) or (path.endswith(QUEUE_API_FILE) and function in QUEUE_API_FUNCTIONS):
        return "queue"
    if path.endswith(_BATCHER_FILES):
        return "model_calls"
    if path.endswith(_SCORERS):
        if function in MODEL_CALL_FUNCTIONS:
            return "model_calls"
        if function in FEATURE_STORE_FUNCTIONS:
            return "feature_store"
    if path == "<built-in>":
        is_json = function in _JSON_BUILTINS or function.startswith(_JSON_BUILTIN_PREFIXES)
        return "json_validation" if is_json else None
    if path.endswith(_JSON_FILES):
        return "json_validation"
    package = library_package(path)
    if package in MODEL_CALL_PACKAGES:
        return "model_calls"
    if package in FEATURE_STORE_PACKAGES:
        return "feature_store"
    if package in JSON_PACKAGES:
        return "json_validation"
    if package in QUEUE_PACKAGES:
        return "queue"
    return None


def breakdown(session: Session) -> dict[str, Any]:
    """Where the profiled requests' wall time went, as shares of five categories.

    Rule: every frame's *self* time (its time minus its children's; pyinstrument
    keeps await time in synthetic ``[await]``/``[self]`` leaves, which count as
    their parent's) goes to the category of its nearest ancestor-or-self frame
    that names one, else to ``framework``:

    - ``model_calls``: the model-call functions of ``scoring_bench/service/scorer_sync.py``
      and ``scorer_async.py`` (``predict``: the HTTP call and the wait for the
      model API), with the library frames, sockets and awaits under them; for the
      batching handler (``scorer_batched.py``) its batch calls (``call_batch``,
      the clients' ``predict_batch``) and every frame of the micro-batcher
      (``scoring_bench/service/batcher.py``: a request's wait for its batch to be
      sent and answered, a model call's share of batching); and
      frames of the HTTP clients ``urllib3``, ``requests`` and ``aiohttp``
      wherever they are, because a scoring handler uses them only to call the
      models (health checks are not profiled) and aiohttp writes a request body
      in a task of its own, outside ``predict``'s stack.
    - ``feature_store``: ``read_features`` in those files, and any frame of the
      ``redis`` package.
    - ``json_validation``: ``scoring_bench/core/schemas.py``, and the ``json``,
      ``orjson``, ``pydantic`` and ``pydantic_core`` packages, including their C
      functions (``dumps``, ``loads``, ``from_json``, ``SchemaValidator.*``),
      wherever they are called — also inside a model call (parsing its answer)
      or a feature read (decoding the stored features).
    - ``queue`` (the queue's API and worker): Celery and its transport (``celery``,
      ``kombu``, ``amqp``, ``billiard``, ``vine``), the API's issued-id store and
      wake-ups (``scoring_bench/service/task_store.py``, ``task_events.py``,
      ``queue.py``) and its ``Queue.submit``/``document``/``_publish`` (so a
      request's wait for its task counts here), with every frame under them —
      their Redis and JSON too — except a task's own code
      (``api_scoring_queue/worker.py``), which starts over as ``framework`` and
      is split like a handler's. Zero for the sync, async and batching handlers.
    - ``framework``: everything else: the server, Flask/werkzeug or
      FastAPI/Starlette, the handler's own code and the profiler's.

    ``wall_ms`` is the sampled wall time of all requests, summed. Shares sum to 1.
    """
    root = session.root_frame()
    if root is None or root.time <= 0:
        raise ValueError("the session has no samples")
    totals = dict.fromkeys(CATEGORIES, 0.0)
    for frame, category in _walk(root):
        totals[category] += max(frame.time - sum(child.time for child in frame.children), 0.0)
    total = sum(totals.values())
    return {"wall_ms": total * 1000.0, "shares": {c: totals[c] / total for c in CATEGORIES}}


def _walk(root: Frame) -> Iterator[tuple[Frame, str]]:
    """Every frame with its category (iterative: stacks can be deep)."""
    pending = [(root, "framework")]
    while pending:
        frame, inherited = pending.pop()
        own = frame_category(frame.function, frame.file_path)
        if inherited == "queue" and own != "framework":
            own = None  # the queue's Redis, JSON, HTTP: the queue's (a task's own code starts over)
        category = own or inherited
        yield frame, category
        pending.extend((child, category) for child in frame.children)


# --- the client side ---------------------------------------------------------------------------------


def profile_client(url: str, body: list[float], n: int, out_dir: Path) -> None:
    """Profile ``n`` sequential POSTs of ``body`` to ``url`` from one pooled
    ``requests.Session`` (no proxy/netrc look-ups) and write ``pyinstrument.html``
    and ``pyinstrument.txt`` to ``out_dir``. A non-2xx answer raises."""
    import requests
    from pyinstrument import Profiler

    if n < 1:
        raise ValueError("n must be at least 1")
    out_dir.mkdir(parents=True, exist_ok=True)
    with requests.Session() as http:
        http.trust_env = False
        profiler = Profiler(interval=SAMPLE_INTERVAL_S, async_mode="disabled")
        profiler.start()
        try:
            for _ in range(n):
                http.post(url, json=body, timeout=10).raise_for_status()
        finally:
            session = profiler.stop()
    write_session_reports(session, out_dir)
