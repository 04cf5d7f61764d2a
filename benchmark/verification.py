"""The verification gate, run before any load (as TechEmpower's ``verify``): does each architecture do
the work it claims, counted by the services themselves?

For each architecture in turn (so every count belongs to one), ``requests`` scoring requests are sent
one after another and three things are checked:

- every answer is a valid score (``benchmark.checks``; the queue: submit, then the result);
- the feature store was read exactly once per request and the model APIs were called exactly
  ``NUM_MODELS`` times per request, as the services count them: Redis's ``INFO commandstats``
  (``cmdstat_get`` calls, after − before) and the ``http_request_duration_seconds_count`` of the
  model APIs' predict and batch (``predict_batch``) routes on their ``/metrics`` (summed over statuses
  and over both model APIs: the queue's worker calls ``QUEUE_MODEL_API``'s);
- the architectures answer the same ``detail`` for the same input (:data:`REFERENCE`, the first
  request of each architecture).

**Which GETs are feature-store reads.** ``INFO commandstats`` counts the GETs of the whole Redis
server, and the feature store shares it with the queue (the embedded Redis: broker in db 1, results in
db 2; with ``REDIS_URL``: the same db, keys under ``REDIS_KEY_PREFIX``). Watched with ``MONITOR`` on a
real stack (Redis 7.0, Celery 5.6, kombu 5.7, redis-py 8), the queue issues GETs that are not feature
reads, so "count GET only if nothing else issues one" does not hold, not even for sync and async:

- per task, the result backend stores one or two states (``STARTED`` with ``QUEUE_TRACK_STARTED``; then
  ``SUCCESS``), each read first (Celery's ``_store_result``: ``GET <prefix>celery-task-meta-<id>``,
  then ``SETEX`` and ``PUBLISH`` in a ``MULTI``) except a SUCCESS unless ``QUEUE_RESULT_READ_BEFORE_SUCCESS``:
  up to two GETs on the results' db per task;
- once a second, busy or idle, the worker's broker restores unacked tasks under a lock
  (``unacked_restore_interval``: ``SET NX``, ``ZRANGE``), which redis-py releases with a Lua script that
  GETs the lock key (``EVALSHA`` → ``get <prefix>unacked_mutex`` on the broker's db, shown by MONITOR
  as ``[1 lua]``, counted by commandstats): GETs in *every* architecture's window.

The rest of a task is not a GET: the API's ``SET <prefix>issued:<id>``, Celery's ``SUBSCRIBE`` /
``UNSUBSCRIBE`` of the task's channel, the publish (``LPUSH`` in a ``MULTI``), the status polls
(``MGET``); the worker's ``BRPOP``, ``ZADD`` + ``HSET`` of the unacked task and its ack (``ZREM`` +
``HDEL``); and its one feature read (``GET <prefix>features:<id>`` on the feature store's db). So the
gate watches ``MONITOR`` during each window and takes **feature-store reads = cmdstat_get (after −
before) − the GETs MONITOR saw that are not feature-store reads** (a GET is a feature-store read when
it is on the feature store's db and its key starts with ``<REDIS_KEY_PREFIX>features:``; the queue's
keys start with ``<REDIS_KEY_PREFIX>queue:``, so this holds with one shared ``REDIS_URL`` db too). The
window MONITOR watches (between two ``ECHO`` markers) lies inside the one ``INFO`` measures, so a GET
MONITOR missed can only raise the count: an error makes the gate fail, never pass; a MONITOR that broke
off is a problem of the row. A Redis that refuses ``MONITOR`` (an ACL) leaves the reads uncounted
(``feature_store_reads`` None).

**The batching handler's model calls are batches.** A model API counts one request per HTTP call on each
route, whatever a batch holds: its ``/metrics`` has no count of items. The batching handler calls only the
batch route, one call per batch per model, so ``r`` requests make between ``r × NUM_MODELS /
BATCH_MAX_SIZE`` (every batch full) and ``r × NUM_MODELS`` (every batch of one) batch calls. The gate's
requests go one after another, each answered before the next is sent: a batch never finds company and is
sent with its one item when ``BATCH_MAX_WAIT_MS`` is up, so the count is exactly ``r × NUM_MODELS``
batch calls and no single call, as for the other architectures' single calls (none of which may be a
batch call). Each batched answer's ``Server-Timing`` says the size of the batch it rode in
(``batch_size_<i>``): a size above one means someone else sent requests meanwhile, and the counts'
premise is gone: a problem of the row.

**A count that cannot be taken is None and is not judged.** With ``METRICS_ENABLED=false`` the model
APIs serve no ``/metrics``: ``model_calls`` is None (``expected_model_calls`` still says what it should
have been) and the row passes or fails on the rest; likewise the reads when ``MONITOR`` is refused. A
count that could be taken and differs from the expected one is a failure whose problem names the
architecture and the numbers ("sync: 100 feature-store reads for 50 requests (expected 50)").

The counting and judging are plain functions; :func:`run_gate` is the I/O around them. All HTTP goes
straight to loopback (no proxy).
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis
import requests
from prometheus_client.parser import text_string_to_metric_families

from benchmark.checks import check_score
from benchmark.queue_client import Call, QueueClientOptions, TaskOutcome, TaskRun
from benchmark.summary import Verification, VerificationRow
from scoring_bench.core import features as fs
from scoring_bench.core.endpoints import EXAMPLE_FEATURES, batch_path
from scoring_bench.core.settings import Settings
from scoring_bench.core.timing import BATCH_SIZE_PREFIX, parse_server_timing_notes
from scoring_bench.service.metrics import METRICS_PATH
from scoring_bench.stack.probes import http_get
from scoring_bench.stack.servers import service

ARCHITECTURES = ("sync", "async", "batched", "queue")
BATCHING = "batched"  # the architecture whose model calls are batch calls
DEFAULT_REQUESTS = 50
REFERENCE: dict[str, Any] = {"entity_id": "1", "features": EXAMPLE_FEATURES}  # the first request of each
MODEL_APIS = ("model-sync", "model-async")
REQUEST_COUNT = "http_request_duration_seconds_count"
REQUEST_TIMEOUT_S = 30.0
SETTLE_S = 1.0  # an ASGI server counts a request after its body is sent: late counts arrive within this
MONITOR_TIMEOUT_S = 10.0
JSON_HEADERS = {"Content-Type": "application/json"}
# The same code computes every architecture's detail: only a float's last bits may differ.
DETAIL_REL_TOL = 1e-9


# --------------------------------------------------------------------------- pure: what to send


def request_bodies(requests: int, num_entities: int) -> list[bytes]:
    """The gate's requests to one architecture: :data:`REFERENCE` first, then one entity after another."""
    bodies = [orjson.dumps(REFERENCE)]
    for i in range(1, requests):
        bodies.append(orjson.dumps({"entity_id": str(i % num_entities), "features": EXAMPLE_FEATURES}))
    return bodies


def feature_prefix(settings: Settings) -> str:
    """Every feature-store key starts with this."""
    return fs.entity_key(settings.redis_key_prefix, "")


# --------------------------------------------------------------------------- pure: counting


def cmdstat_calls(commandstats: Mapping[str, Any], command: str) -> int:
    """Calls of ``command`` in redis-py's parsed ``INFO commandstats`` (0: never called)."""
    stats = commandstats.get(f"cmdstat_{command.lower()}")
    return int(stats["calls"]) if isinstance(stats, Mapping) else 0


def predict_calls(metrics_text: str, service_name: str, route: str) -> int:
    """POSTs to ``route`` that ``service_name`` counted (any status), from its ``/metrics`` text."""
    total = 0.0
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            labels = sample.labels
            if (
                sample.name == REQUEST_COUNT
                and labels.get("service") == service_name
                and labels.get("route") == route
                and labels.get("method") == "POST"
            ):
                total += sample.value
    return round(total)


def expected_model_calls(arch: str, requests: int, num_models: int) -> int:
    """The model-API calls ``requests`` sequential requests to ``arch`` make: ``NUM_MODELS`` each; for the
    batching handler these are batch calls of one item (module docstring), ``NUM_MODELS`` per request too."""
    del arch  # the same count for every architecture: only its kind differs (check_counts)
    return requests * num_models


def is_foreign_get(db: int, command: str, feature_db: int, prefix: str) -> bool:
    """A MONITOR line (its db and its command, ``"GET key"``) that is a GET but not a feature-store read."""
    name, _, key = command.partition(" ")
    return name.upper() == "GET" and not (db == feature_db and key.startswith(prefix))


def foreign_gets(lines: Iterable[tuple[int, str]], feature_db: int, prefix: str) -> int:
    return sum(is_foreign_get(db, command, feature_db, prefix) for db, command in lines)


def feature_store_reads(gets_before: int, gets_after: int, foreign: int | None) -> int | None:
    """The feature-store reads of a window: Redis's GETs minus the ones that were not (None: not known)."""
    return None if foreign is None else gets_after - gets_before - foreign


def between_markers(lines: Sequence[tuple[int, str]], start: str, end: str) -> list[tuple[int, str]] | None:
    """The MONITOR lines after ``ECHO start`` and before ``ECHO end``; None unless both were seen."""
    commands = [command for _, command in lines]
    try:
        first = commands.index(f"ECHO {start}")
        last = commands.index(f"ECHO {end}", first)
    except ValueError:
        return None
    return list(lines[first + 1 : last])


# --------------------------------------------------------------------------- pure: judging


def check_counts(
    arch: str,
    requests: int,
    valid: int,
    reads: int | None,
    model_calls: int | None,
    num_models: int,
    first_problem: str | None = None,
    batch_calls: int | None = None,
) -> list[str]:
    """What is wrong with one architecture's counts (empty: nothing); a None count is not judged.
    ``model_calls``: the model APIs' predict and batch calls together; ``batch_calls``: how many of them
    were batch calls (every one for the batching handler, none for the others)."""
    problems = []
    if valid != requests:
        first = f" (first: {first_problem})" if first_problem else ""
        problems.append(f"{arch}: {requests - valid} of {requests} answers are not valid scores{first}")
    if reads is not None and reads != requests:
        problems.append(f"{arch}: {reads} feature-store reads for {requests} requests (expected {requests})")
    expected_calls = expected_model_calls(arch, requests, num_models)
    if model_calls is not None and model_calls != expected_calls:
        each = "one batch call of one item per model per request" if arch == BATCHING else "per request"
        problems.append(
            f"{arch}: {model_calls} model calls for {requests} requests "
            f"(expected {expected_calls}: NUM_MODELS={num_models} {each})"
        )
    if model_calls is not None and batch_calls is not None:
        if arch == BATCHING and batch_calls != model_calls:
            problems.append(
                f"{arch}: {model_calls - batch_calls} of its {model_calls} model calls were single predict "
                "calls (expected none: it calls the batch route, predict_batch)"
            )
        if arch != BATCHING and batch_calls:
            problems.append(f"{arch}: {batch_calls} batch calls (predict_batch) (expected none)")
    return problems


def check_batch_sizes(arch: str, sizes: Sequence[int]) -> list[str]:
    """The batching handler's answers at the gate's sequential requests each rode in batches of one item
    (``sizes``: every answer's ``batch_size_<i>``); a larger one means other requests came meanwhile."""
    larger = [size for size in sizes if size != 1]
    if not larger:
        return []
    return [
        f"{arch}: {len(larger)} batches of more than one item (largest {max(larger)}) at sequential "
        "requests: another client sent requests during the gate, so its counts cannot be judged exactly"
    ]


def batch_sizes(server_timing: str) -> list[int]:
    """The ``batch_size_<i>`` notes of a batching handler's ``Server-Timing`` (none for the others)."""
    notes = parse_server_timing_notes(server_timing)
    return [
        int(value) for name, value in notes.items() if name.startswith(BATCH_SIZE_PREFIX) and value.isdigit()
    ]


def check_agreement(details: Mapping[str, float | None]) -> list[str]:
    """Whether the architectures answered the reference input alike (an architecture without an
    answer is left out: its own row already fails)."""
    answered = {arch: detail for arch, detail in details.items() if detail is not None}
    values = list(answered.values())
    if all(math.isclose(v, values[0], rel_tol=DETAIL_REL_TOL, abs_tol=0.0) for v in values[1:]):
        return []
    listed = ", ".join(f"{arch} {detail!r}" for arch, detail in answered.items())
    return [f"the architectures answer the reference input {REFERENCE} differently: {listed}"]


def answer_detail(content: bytes) -> float | None:
    """The ``detail`` of a scoring answer already checked valid."""
    detail = orjson.loads(content)["detail"]
    return float(detail) if isinstance(detail, (int, float)) else None


# --------------------------------------------------------------------------- I/O: counters


@dataclass
class Answer:
    detail: float | None
    problem: str | None  # None: a valid score
    batch_sizes: list[int] = field(default_factory=list)  # the batching handler's, per model


@dataclass(frozen=True)
class CallCounts:
    """The model APIs' counted calls: single predicts and batch calls (``predict_batch``)."""

    single: int
    batch: int

    @property
    def total(self) -> int:
        return self.single + self.batch

    def __sub__(self, other: CallCounts) -> CallCounts:
        return CallCounts(self.single - other.single, self.batch - other.batch)


class ModelCalls:
    """The model APIs' predict and batch counts, each summed (None throughout when metrics are off).
    ``metrics_urls``: each model API's /metrics URLs, summed (an external target's pods); default: its own
    /metrics; a model API with none leaves the count None (not counted)."""

    def __init__(self, settings: Settings, metrics_urls: Mapping[str, Sequence[str]] | None = None) -> None:
        self.settings = settings
        if metrics_urls is None:
            self.urls = {name: [service(name).url(settings, METRICS_PATH)] for name in MODEL_APIS}
        else:
            self.urls = {name: list(metrics_urls.get(name, ())) for name in MODEL_APIS}
        self.before = self.read()

    def read(self) -> CallCounts | None:
        if not self.settings.metrics_enabled or not all(self.urls.values()):
            return None
        single = batch = 0
        for name, urls in self.urls.items():
            route = str(service(name).predict_path)
            for url in urls:
                status, body = http_get(url, timeout=5.0)
                if status != 200:
                    raise RuntimeError(f"{name} {url}: HTTP {status}")
                text = body.decode()
                single += predict_calls(text, name, route)
                batch += predict_calls(text, name, batch_path(route))
        return CallCounts(single, batch)

    def since(self, expected: int) -> CallCounts | None:
        """The calls since this object was made; read again for up to SETTLE_S while fewer than
        ``expected`` (single and batch together) are counted (a surplus is never waited away)."""
        if self.before is None:
            return None
        deadline = time.monotonic() + SETTLE_S
        while True:
            after = self.read()
            assert after is not None
            if (after - self.before).total >= expected or time.monotonic() >= deadline:
                return after - self.before
            time.sleep(0.05)


class GetCount:
    """``with GetCount(settings) as count: ...``, then ``count.reads``: the feature-store reads of the
    block (module docstring: Redis's GETs minus the ones MONITOR saw that were not feature reads).
    None when Redis refuses MONITOR; a RuntimeError when MONITOR broke off (the count would be wrong)."""

    def __init__(self, settings: Settings) -> None:
        url = settings.feature_store_url
        self.client = redis.Redis.from_url(url, socket_timeout=MONITOR_TIMEOUT_S)  # INFO and the markers
        self.watcher = redis.Redis.from_url(url)  # MONITOR: waits as long as the block runs
        self.feature_db = int(self.client.connection_pool.connection_kwargs.get("db", 0))
        self.prefix = feature_prefix(settings)
        token = uuid.uuid4().hex
        self.start, self.end = f"verification-start-{token}", f"verification-end-{token}"
        self.lines: list[tuple[int, str]] = []
        self.refused: str | None = None  # why Redis refused MONITOR
        self.failure: str | None = None  # why MONITOR broke off
        self.monitoring = threading.Event()
        self.thread = threading.Thread(target=self._watch, name="verification-monitor", daemon=True)
        self.reads: int | None = None

    def _watch(self) -> None:
        """MONITOR until the end marker."""
        try:
            with self.watcher.monitor() as monitor:
                self.monitoring.set()
                while True:
                    line = monitor.next_command()
                    self.lines.append((line["db"], line["command"]))
                    if line["command"] == f"ECHO {self.end}":
                        return
        except redis.ResponseError as exc:  # the server's answer to MONITOR: an ACL forbids it
            self.refused = str(exc)
        except Exception as exc:  # the connection lost (or closed by __exit__), a line it cannot parse
            self.failure = f"{type(exc).__name__}: {exc}"
        finally:
            self.monitoring.set()

    def __enter__(self) -> GetCount:
        self.thread.start()
        self.monitoring.wait(MONITOR_TIMEOUT_S)
        try:
            self.gets_before = cmdstat_calls(self.client.info("commandstats"), "get")
            self.client.echo(self.start)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.client.echo(self.end)
            gets_after = cmdstat_calls(self.client.info("commandstats"), "get")
            self.thread.join(MONITOR_TIMEOUT_S)
            window = between_markers(self.lines, self.start, self.end)
            if self.refused is not None:
                return
            if window is None:
                raise RuntimeError(f"MONITOR lost the window ({self.failure or 'no end marker'})")
            self.reads = feature_store_reads(
                self.gets_before, gets_after, foreign_gets(window, self.feature_db, self.prefix)
            )
        finally:
            self.close()

    def close(self) -> None:
        """Both connections; closing the MONITOR one ends the thread if it still waits."""
        self.client.close()
        self.watcher.connection_pool.disconnect()
        self.watcher.close()


# --------------------------------------------------------------------------- I/O: the requests


def loopback_session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # straight to 127.0.0.1, whatever HTTP_PROXY says
    return session


def score_once(session: requests.Session, url: str, body: bytes) -> Answer:
    """One request to a sync, async or batching scoring handler."""
    try:
        resp = session.post(url, data=body, headers=JSON_HEADERS, timeout=REQUEST_TIMEOUT_S)
    except requests.RequestException as exc:
        return Answer(None, f"{type(exc).__name__}: {exc}")
    problem = check_score(resp.status_code, resp.content)
    sizes = batch_sizes(resp.headers.get("Server-Timing", ""))
    return Answer(None if problem else answer_detail(resp.content), problem, sizes)


def task_once(session: requests.Session, base: str, body: bytes, options: QueueClientOptions) -> Answer:
    """One task of the queue: submit (waiting for the result), long-poll if need be, judge."""
    run = TaskRun(body, options)
    step: Call | TaskOutcome = run.first()
    while isinstance(step, Call):
        try:
            resp = session.request(
                step.method, base + step.path, data=step.body, headers=JSON_HEADERS, timeout=options.timeout_s
            )
        except requests.RequestException as exc:
            step = run.failed(exc)
            break
        step = run.answer(resp.status_code, resp.content)
    if step.problem is not None or step.doc is None:
        return Answer(None, step.problem)
    return Answer(float(step.doc["result"]["detail"]), None)


def sender(settings: Settings, arch: str, session: requests.Session) -> Callable[[bytes], Answer]:
    """How one request is sent to ``arch``."""
    if arch == "queue":
        wait = settings.queue_max_wait_ms
        options = QueueClientOptions(wait, wait, REQUEST_TIMEOUT_S)
        base = service("scoring-queue").url(settings)
        return lambda body: task_once(session, base, body, options)
    url = service(f"scoring-{arch}").predict_url(settings)
    return lambda body: score_once(session, url, body)


# --------------------------------------------------------------------------- the gate


@dataclass
class Counts:
    """What the services counted during a piece of work (None: not counted)."""

    reads: int | None = None
    model_calls: CallCounts | None = None
    problem: str | None = None  # why the counters could not be read


def counted(
    settings: Settings,
    work: Callable[[], None],
    expected_calls: int,
    metrics_urls: Mapping[str, Sequence[str]] | None = None,
) -> Counts:
    """Run ``work``; the feature-store reads and model calls the services counted meanwhile."""
    try:
        model_calls = ModelCalls(settings, metrics_urls)
        with GetCount(settings) as gets:
            work()
            calls = model_calls.since(expected_calls)
        return Counts(gets.reads, calls)
    except (OSError, RuntimeError, redis.RedisError) as exc:
        return Counts(problem=f"the services' counters could not be read: {type(exc).__name__}: {exc}")


def verify_architecture(
    settings: Settings,
    arch: str,
    requests: int,
    on_request: Callable[[str], None] | None = None,
    metrics_urls: Mapping[str, Sequence[str]] | None = None,
) -> VerificationRow:
    """``requests`` requests to ``arch``, one after another, counted by the services."""
    expected_calls = expected_model_calls(arch, requests, settings.num_models)
    answers: list[Answer] = []
    session = loopback_session()
    send = sender(settings, arch, session)

    def work() -> None:
        for body in request_bodies(requests, settings.num_entities):
            answers.append(send(body))
            if on_request is not None:
                on_request(arch)

    try:
        counts = counted(settings, work, expected_calls, metrics_urls)
    finally:
        session.close()
    failed = [answer.problem for answer in answers if answer.problem is not None]
    valid = len(answers) - len(failed)
    problems = [f"{arch}: {counts.problem}"] if counts.problem else []
    calls = counts.model_calls
    problems += check_counts(
        arch,
        requests,
        valid,
        counts.reads,
        calls.total if calls is not None else None,
        settings.num_models,
        next(iter(failed), None),
        calls.batch if calls is not None else None,
    )
    if arch == BATCHING:
        problems += check_batch_sizes(arch, [size for answer in answers for size in answer.batch_sizes])
    return VerificationRow(
        architecture=arch,
        requests=requests,
        valid_answers=valid,
        feature_store_reads=counts.reads,
        expected_reads=requests,
        model_calls=calls.total if calls is not None else None,
        expected_model_calls=expected_calls,
        detail=answers[0].detail if answers else None,
        problems=problems,
    )


def run_gate(
    settings: Settings,
    architectures: Sequence[str],
    requests: int = DEFAULT_REQUESTS,
    on_request: Callable[[str], None] | None = None,
    metrics_urls: Mapping[str, Sequence[str]] | None = None,
) -> Verification:
    """Verify each architecture in turn against the running stack ``settings`` describes.
    ``on_request(arch)`` is called after each request (the tests use it to play a faulty stack).
    ``metrics_urls``: where the model APIs' counts are read (an external target's pods, summed; default:
    each model API's own /metrics)."""
    unknown = [arch for arch in architectures if arch not in ARCHITECTURES]
    if unknown or requests < 1:
        raise ValueError(f"run_gate: architectures among {ARCHITECTURES} and requests >= 1, not {unknown}")
    rows = [verify_architecture(settings, arch, requests, on_request, metrics_urls) for arch in architectures]
    return Verification(rows=rows, problems=check_agreement({row.architecture: row.detail for row in rows}))
