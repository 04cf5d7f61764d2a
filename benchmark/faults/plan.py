"""Which faults apply to an architecture, what each does, and the timeout a failed answer must beat. Pure.

Each fault has a target (a process of the stack, by its supervisor name), an action, and the timeout
that bounds how long a request may take to fail while it lasts: a failure must be fast, so the p99 of
the failed answers must stay under that timeout + :data:`FAST_MARGIN_MS`.

- ``model-kill``: the model API the architecture calls is SIGKILLed (its whole process group), and
  restarted by the supervisor after the fault window. Bound: ``MODEL_CONNECT_TIMEOUT_S`` (a refused or
  reset connection fails at once; a new one may take this long).
- ``model-freeze``: that model API is stopped (SIGSTOP) for the window, then continued (SIGCONT). Its
  connections are accepted by the kernel but never answered: only the handler's ``MODEL_TIMEOUT_S``
  turns them into 504s.
- ``redis-restart``: the embedded Redis is SIGKILLed and started again by the supervisor; it reloads its
  append-only file (``REDIS_AOF``), or, with that off, the supervisor seeds the features again. For the
  queue this Redis is also the broker and the result store (unless ``BROKER_URL``/``RESULT_BACKEND_URL``
  move them). Bound: ``REDIS_TIMEOUT_S``. Skipped with ``REDIS_URL`` (not the stack's Redis to kill).
- ``server-worker-kill``: one worker process of the scoring server is SIGKILLed; its server starts
  another (gunicorn's master; uvicorn's process manager with 2 or more workers). The killed worker's
  requests fail the moment it dies (their connections are reset), however long they had waited in it
  before: bound by how long a request may run at all, ``MODEL_TIMEOUT_S``. Skipped for a uvicorn server
  with one worker: that one process is the server, not a worker of it (granian forks its workers, one
  too, and replaces a killed one: ``SCORING_*_SERVER=granian`` is not skipped).
- ``queue-worker-kill`` (queue): the Celery worker is SIGKILLed mid-load and restarted after the window.
- ``broker-restart`` (queue): RabbitMQ's app stopped and started (``rabbitmqctl -n <node> stop_app``,
  ``start_app``) when ``BROKER_URL`` is amqp:// and ``BENCH_FAULTS_RABBITMQ_NODE`` names its node; with
  the embedded Redis as the broker, ``redis-restart`` is the broker's restart.

The batching handler's model calls are batch calls sent up to ``BATCH_MAX_WAIT_MS`` after the request
asked: its model and server-worker bounds add that wait.

The queue's failed answers are its refused submits (no task id): its bound is the submit's, the result
store's ``REDIS_TIMEOUT_S`` plus the broker's connect timeout. A task that was accepted and failed later
is not an answer that was slow to fail: the task ledger follows it to its end.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from benchmark.faults.verdicts import FAST_MARGIN_MS
from benchmark.settings import BenchSettings, FaultName, model_api_of
from scoring_bench.core.settings import Settings
from scoring_bench.service.queue import celery_config, is_redis_url, retry_delay_s
from scoring_bench.stack.servers import server_of, service

Action = Literal["kill-restart", "freeze", "kill-child", "rabbitmq-restart"]
LEDGER_SLACK_S = 10.0  # beyond the longest a task can take to end, before the ledger stops waiting

LABELS: dict[str, str] = {
    "model-kill": "model API killed (SIGKILL), restarted",
    "model-freeze": "model API frozen (SIGSTOP, then SIGCONT)",
    "redis-restart": "Redis killed (SIGKILL), restarted",
    "server-worker-kill": "one worker of the scoring server killed (SIGKILL)",
    "queue-worker-kill": "queue worker killed (SIGKILL), restarted",
    "broker-restart": "RabbitMQ broker restarted (stop_app, start_app)",
}
QUEUE_ONLY = ("queue-worker-kill", "broker-restart")


@dataclass(frozen=True)
class Fault:
    """One fault on one architecture: what is hit (``target``: a process of the stack by its supervisor
    name, or ``rabbitmq``), how, the timeout a failed answer must beat (``timeout_s``, named by
    ``timeout_name``; 0: none but the margin), or why it is skipped."""

    name: FaultName
    architecture: str
    target: str
    action: Action
    timeout_s: float
    timeout_name: str
    skipped: str | None = None

    @property
    def label(self) -> str:
        return LABELS[self.name]

    @property
    def error_limit_ms(self) -> float:
        """The p99 the failed answers must stay under."""
        return self.timeout_s * 1000.0 + FAST_MARGIN_MS


def model_api(settings: Settings, arch: str) -> str:
    """The model API ``arch`` calls (the queue's worker: ``QUEUE_MODEL_API``; the batching handler: the
    async one's batch route)."""
    return model_api_of(arch, settings.queue_model_api)


def scoring_server(arch: str) -> str:
    return f"scoring-{arch}"


def server_workers(settings: Settings, arch: str) -> int:
    """How many worker processes the architecture's scoring server runs."""
    return int(getattr(settings, f"scoring_{arch}_workers"))


def broker_connect_timeout_s(settings: Settings) -> float:
    return float(celery_config(settings)["broker_connection_timeout"])


def submit_timeout_s(settings: Settings) -> float:
    """How long the queue API's submit may take to be refused: its write to the result store, then the
    publish to the broker."""
    return settings.redis_timeout_s + broker_connect_timeout_s(settings)


def batch_wait(settings: Settings, arch: str, name: str, timeout_s: float) -> tuple[str, float]:
    """A model-call bound (its name, seconds); the batching handler's calls start only when their batch is
    sent, up to ``BATCH_MAX_WAIT_MS`` after the request asked: that wait is added to its bound."""
    if arch != "batched":
        return name, timeout_s
    return f"{name} + BATCH_MAX_WAIT_MS", timeout_s + settings.batch_max_wait_ms / 1000.0


def fault(bench: BenchSettings, arch: str, name: FaultName) -> Fault:
    """``name`` on ``arch``: its target, action and bound, or why it does not apply."""
    queue = arch == "queue"
    if name in QUEUE_ONLY and not queue:
        return Fault(name, arch, "", "kill-restart", 0.0, "", f"{arch} has no queue")
    submit = ("REDIS_TIMEOUT_S + the broker's connect timeout", submit_timeout_s(bench))
    if name == "model-kill":
        bound = (
            submit
            if queue
            else batch_wait(bench, arch, "MODEL_CONNECT_TIMEOUT_S", bench.model_connect_timeout_s)
        )
        return Fault(name, arch, model_api(bench, arch), "kill-restart", bound[1], bound[0])
    if name == "model-freeze":
        bound = submit if queue else batch_wait(bench, arch, "MODEL_TIMEOUT_S", bench.model_timeout_s)
        return Fault(name, arch, model_api(bench, arch), "freeze", bound[1], bound[0])
    if name == "redis-restart":
        bound = submit if queue else ("REDIS_TIMEOUT_S", bench.redis_timeout_s)
        skip = "REDIS_URL is set: that Redis is not the stack's to kill" if bench.redis_url else None
        return Fault(name, arch, "redis", "kill-restart", bound[1], bound[0], skip)
    if name == "server-worker-kill":
        skip = None
        if server_of(service(scoring_server(arch)), bench) == "uvicorn" and server_workers(bench, arch) < 2:
            skip = (
                f"uvicorn runs one process (SCORING_{arch.upper()}_WORKERS=1): it is the server, not a "
                f"worker of it; with 2 or more, uvicorn restarts a killed one"
            )
        bound = submit if queue else batch_wait(bench, arch, "MODEL_TIMEOUT_S", bench.model_timeout_s)
        return Fault(name, arch, scoring_server(arch), "kill-child", bound[1], bound[0], skip)
    if name == "queue-worker-kill":
        return Fault(name, arch, "queue-worker", "kill-restart", submit[1], submit[0])
    return _broker_restart(bench, arch, submit)


def _broker_restart(bench: BenchSettings, arch: str, submit: tuple[str, float]) -> Fault:
    skip = None
    if is_redis_url(bench.queue_broker_url):
        skip = "the broker is the stack's Redis: its restart is redis-restart's"
        if bench.redis_url or bench.broker_url:
            skip = "the broker is a Redis the stack does not own"
    elif not bench.bench_faults_rabbitmq_node:
        skip = "BROKER_URL is RabbitMQ: set BENCH_FAULTS_RABBITMQ_NODE to let the experiment restart it"
    return Fault("broker-restart", arch, "rabbitmq", "rabbitmq-restart", submit[1], submit[0], skip)


def faults_for(bench: BenchSettings, arch: str) -> list[Fault]:
    """Every fault asked for (``BENCH_FAULTS``) on ``arch``, in order; the queue-only ones only for the
    queue (elsewhere they are not faults of the architecture, so not even listed as skipped)."""
    return [
        fault(bench, arch, name) for name in bench.bench_faults if arch == "queue" or name not in QUEUE_ONLY
    ]


def run_seconds(bench: BenchSettings) -> float:
    """One fault's steady load: before, during and after the window."""
    return bench.bench_faults_steady_s + bench.bench_faults_window_s + bench.bench_faults_recover_s


def retry_budget_s(settings: Settings, attempt_s: float) -> float:
    """The longest a task can take to end when every attempt fails after ``attempt_s``: its attempts and
    the longest backoff before each retry."""
    waits = sum(
        retry_delay_s(n, settings.queue_retry_backoff_s, settings.queue_retry_backoff_max_s, lambda: 1.0)
        for n in range(settings.queue_max_retries)
    )
    return (settings.queue_max_retries + 1) * attempt_s + waits


def ledger_wait_s(settings: Settings) -> float:
    """How long after a fault's end every accepted task must have ended: a task a dead worker held comes
    back after the Redis broker's visibility timeout (RabbitMQ: when the connection drops), then runs
    within its time limit and retries."""
    redelivery = settings.queue_visibility_timeout_s if is_redis_url(settings.queue_broker_url) else 0.0
    attempt = settings.redis_timeout_s + settings.num_models * settings.model_timeout_s
    return redelivery + max(settings.queue_time_limit_s, retry_budget_s(settings, attempt)) + LEDGER_SLACK_S
