"""Settings of a benchmark run: the stack's settings plus every knob of the experiments.

``BENCH_PROFILE`` (smoke, quick, full) fills in the knobs a user did not set; any knob set in
the environment (``BENCH_RAMP_STEP_S=20``) wins over the profile.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import NoDecode

from benchmark.external import BenchTarget, Targets, load_targets_file, resolve_targets
from scoring_bench.core.settings import Architecture, Settings

Experiment = Literal[
    "profile", "timeit", "locust", "openloop", "crosscheck", "burst", "attribution", "soak", "faults"
]
# The faults experiment's faults (benchmark/faults/plan.py says what each does, and where it applies).
FaultName = Literal[
    "model-kill", "model-freeze", "redis-restart", "server-worker-kill", "queue-worker-kill", "broker-restart"
]
FAULTS: tuple[FaultName, ...] = (
    "model-kill",
    "model-freeze",
    "redis-restart",
    "server-worker-kill",
    "queue-worker-kill",
    "broker-restart",
)
Study = Literal["waterfall", "fanout", "cpu", "tail", "queue", "engine", "servers", "batching"]
Arrivals = Literal["poisson", "constant"]
EXPERIMENTS: tuple[Experiment, ...] = (
    "profile",
    "timeit",
    "locust",
    "openloop",
    "crosscheck",
    "burst",
    "attribution",
)
ARCHITECTURES: tuple[Architecture, ...] = ("sync", "async", "batched", "queue")
# The architectures whose handler the attribution studies cover: they are about the sync-async gap (the
# profiler covers every architecture, the queue's API and worker too: benchmark/profile_experiment.py).
REQUEST_RESPONSE: tuple[Architecture, ...] = ("sync", "async")
AUTO: Literal["auto"] = "auto"


def model_api_of(arch: str, queue_model_api: str = "async") -> str:
    """The model API service (``model-sync``, ``model-async``) an architecture's requests reach: the sync and
    async handlers their own, the batching handler the async one's batch route (doc/batching.md), the
    queue's worker ``QUEUE_MODEL_API``'s."""
    if arch == "queue":
        return f"model-{queue_model_api}"
    return "model-async" if arch == "batched" else f"model-{arch}"


PROFILES: dict[str, dict[str, Any]] = {
    # every experiment, tiny: checks that everything works end to end
    "smoke": {
        "bench_profile_requests": 16,
        "bench_timeit_requests": 20,
        "bench_one_user_s": 4,
        "bench_ramp_users": [1, 16, 128],
        "bench_ramp_step_s": 4,
        "bench_warmup_s": 1,
        "bench_sustained_s": 5,
        "bench_stress_s": 3,
        "bench_recovery_s": 3,
        "bench_attribution_repeats": 1,
        "bench_attribution_timeit": 6,
        "bench_attribution_load_s": 1.5,
        "bench_servers_rounds": 1,
        "bench_servers_timeit": 6,
        "bench_servers_load_s": 1.5,
        "bench_fanout": [1, 8],
        # the batching study: one point (the default batch settings), no per-item sweep
        "bench_batching_waits_ms": [5],
        "bench_batching_sizes": [32],
        "bench_batching_per_item": [],
        "bench_burst_concurrencies": [8, 64],
        "bench_repeats": 1,
        "bench_repeat_one_user_s": 2,
        "bench_repeat_sustained_s": 2,
        "bench_open_step_s": 2,
        "bench_crosscheck_s": 2,
        "bench_faults_steady_s": 3,
        "bench_faults_window_s": 3,
        "bench_faults_recover_s": 6,
        "bench_faults_probe_s": 3,
        "bench_control": False,
        "bench_control_s": 2,
        "bench_control_requests": 20,
    },
    # numbers a user can act on, in about 14 minutes on 2 cores (benchmark/duration.py plans it)
    "quick": {
        "bench_profile_requests": 30,
        "bench_timeit_requests": 40,
        "bench_one_user_s": 5,
        "bench_ramp_users": [1, 16, 64, 128, 256],
        "bench_ramp_step_s": 4,
        "bench_warmup_s": 1,
        # the first of the sustained measurement's three repetitions (the others: bench_repeat_sustained_s);
        # 10 s: 9 s measured, thousands of requests at the breaking users
        "bench_sustained_s": 10,
        "bench_stress_s": 5,
        "bench_recovery_s": 3,
        "bench_attribution_repeats": 2,
        "bench_attribution_timeit": 8,
        "bench_attribution_load_s": 1,
        # the servers study: 2 rounds of 3 stacks (benchmark/attribution_servers.py); the six stacks' starts
        # and stops take much of its time, so its measurements are short
        "bench_servers_rounds": 2,
        "bench_servers_timeit": 12,
        "bench_servers_load_s": 2,
        # the fan-out's ends (its sentences compare them); full has the steps between
        "bench_fanout": [1, 8],
        # the batching study in ~90 s: 6 grid points, 3 more per-item costs (0, 2.25 and 9 ms of 45)
        "bench_batching_waits_ms": [1, 5, 20],
        "bench_batching_sizes": [8, 32],
        "bench_batching_per_item": [0, 0.05, 0.2],
        "bench_burst_concurrencies": [8, 64],
        "bench_repeats": 3,
        "bench_repeat_one_user_s": 3,
        "bench_repeat_sustained_s": 5,
        "bench_open_step_s": 2,
        "bench_crosscheck_s": 5,
        "bench_faults_steady_s": 5,
        "bench_faults_window_s": 5,
        "bench_faults_recover_s": 15,
        "bench_faults_probe_s": 5,
        "bench_control": True,
        "bench_control_s": 5,
        "bench_control_requests": 200,
        "bench_verify_requests": 20,  # the gate checks counts and answers: 20 requests show them as 50 do
    },
    # the seed's scale: long steps, long sustained and stress phases
    "full": {
        "bench_profile_requests": 200,
        "bench_timeit_requests": 1000,
        "bench_one_user_s": 60,
        "bench_ramp_users": [1, 4, 8, 16, 32, 48, 64, 96, 128, 192, 256, 384, 512],
        "bench_ramp_step_s": 30,
        "bench_warmup_s": 5,
        "bench_sustained_s": 180,
        "bench_stress_s": 60,
        "bench_recovery_s": 30,
        "bench_attribution_repeats": 5,
        "bench_attribution_timeit": 100,
        "bench_attribution_load_s": 20,
        "bench_servers_rounds": 3,
        "bench_servers_timeit": 100,
        "bench_servers_load_s": 20,
        "bench_fanout": [1, 2, 4, 8, 16],
        "bench_batching_waits_ms": [0, 2, 5, 20],
        "bench_batching_sizes": [8, 16, 32, 64],
        "bench_batching_per_item": [0, 0.005, 0.01, 0.05, 0.1, 0.2, 0.5],
        "bench_burst_concurrencies": [8, 16, 32, 64, 128],
        "bench_repeats": 5,
        "bench_repeat_one_user_s": 20,
        "bench_repeat_sustained_s": 30,
        "bench_open_step_s": 10,
        "bench_crosscheck_s": 20,
        "bench_faults_steady_s": 15,
        "bench_faults_window_s": 5,
        "bench_faults_recover_s": 45,
        "bench_faults_probe_s": 10,
        "bench_control": True,
        "bench_control_s": 20,
        "bench_control_requests": 1000,
    },
}
# A profile may name its own experiments (the user's EXPERIMENTS wins): full adds the faults experiment,
# which kills and freezes processes on stacks of its own, to the default ones.
PROFILES["full"]["experiments"] = [*EXPERIMENTS, "faults"]
# `make soak`: a constant load on each architecture for SOAK_S; quick's sizes for anything else asked for
# (EXPERIMENTS=locust,soak: the soak's rate then comes from the ramp's peak)
PROFILES["soak"] = {**PROFILES["quick"], "bench_repeats": 1, "experiments": ["soak"], "bench_control": False}
# The experiments on the main stack the minimal control accompanies (BENCH_CONTROL): a run of other ones only
# (EXPERIMENTS=attribution, a soak) does not measure it.
CONTROL_EXPERIMENTS: tuple[Experiment, ...] = ("timeit", "locust", "openloop", "crosscheck")


class BenchSettings(Settings):
    """One object for the benchmark process: how to start the stack and what to run on it."""

    bench_profile: Literal["smoke", "quick", "full", "soak"] = Field(
        "quick", description="Size of the run (soak: the soak alone, `make soak`)."
    )
    experiments: Annotated[list[Experiment], NoDecode] = Field(
        list(EXPERIMENTS),
        description="Which experiments, comma-separated: "
        "profile,timeit,locust,openloop,crosscheck,burst,attribution (the default), soak, and faults "
        "(in the full profile's default).",
    )
    architectures: Annotated[list[Architecture], NoDecode] = Field(
        list(ARCHITECTURES),
        description="Which stacks to drive: sync,async,batched,queue (batched: the async handler with "
        "micro-batched model calls, doc/batching.md).",
    )
    results_dir: Path = Field(Path("results"), description="Run folders go here.")
    run_id: str = Field("", description="Name of the run folder; empty: the start time.")
    # --- where server-side resources come from (benchmark/sampler.py, benchmark/metrics_sampler.py) ---
    resource_source: Literal["psutil", "metrics"] = Field(
        "psutil",
        description="Local stack: the services' CPU and memory from psutil (their process trees) or from "
        "their own /metrics (process_cpu_seconds_total, process_resident_memory_bytes); an external target "
        "always uses metrics.",
    )
    prometheus_url: str | None = Field(
        None,
        description="Read the services' resources from this Prometheus's HTTP API instead of scraping them "
        "(resolution: its scrape interval); a targets file's prometheus_url wins over it.",
    )
    # --- where the stack is (benchmark/external.py, doc/external.md) ---------------------------------
    bench_target: BenchTarget = Field(
        "local",
        description="local: the runner starts, restarts and stops its own stack; external: it measures a "
        "stack someone else started (at TARGET_HOST and the port settings, or BENCH_TARGETS_FILE), "
        "starting nothing and skipping what needs a restart.",
    )
    target_host: str = Field(
        "127.0.0.1", description="External target: the host every service is on by default."
    )
    bench_targets_file: Path | None = Field(
        None, description="External target: a YAML file of per-service URLs and metrics URLs (--targets)."
    )

    bench_profile_requests: int = Field(0, ge=1, description="Requests per profiled service.")
    bench_profile_concurrency: int = Field(4, ge=1, description="Concurrent clients while profiling.")
    bench_timeit_requests: int = Field(0, ge=2, description="Sequential requests per architecture.")
    bench_one_user_s: float = Field(0, gt=0, description="Length of the 1-user phase.")
    bench_ramp_users: Annotated[list[int], NoDecode] = Field(
        [], min_length=1, description="Users of each ramp step."
    )
    bench_ramp_step_s: float = Field(0, gt=0, description="Length of each ramp step.")
    bench_warmup_s: float = Field(0, ge=0, description="Start of each step left out of its statistics.")
    bench_sustained_s: float = Field(0, gt=0, description="Length of the sustained phase.")
    bench_stress_s: float = Field(0, gt=0, description="Length of the stress phase.")
    bench_stress_factor: float = Field(2.0, gt=1, description="Stress users = factor × breaking users.")
    bench_recovery_s: float = Field(0, gt=0, description="Low load after the stress, to see recovery.")
    bench_recovery_users: int = Field(1, ge=1, description="Users during the recovery phase.")
    bench_sample_interval_s: float = Field(0.5, gt=0, description="Resource sampling period.")
    locust_workers: int | Literal["auto"] = Field(
        AUTO, description="Locust worker processes; 0: one process; auto: as many as the load needs."
    )
    locust_ui_port: int = Field(
        8089, ge=1, le=65535, description="`make locust-ui`: the port of Locust's web UI (on 127.0.0.1)."
    )
    # --- Locust on other machines (benchmark/locust_remote.py, doc/methodology.md) -------------------
    locust_master_url: str = Field(
        "",
        description="A Locust master someone else started with benchmark/locustfile.py and its web UI on "
        "(e.g. http://10.0.0.9:8089): the runner drives every phase through its web API and starts no "
        "Locust process; empty: the runner runs Locust itself.",
    )
    locust_expect_workers: int = Field(
        0,
        ge=0,
        description="> 0: the runner starts a Locust master (its web UI on loopback), kept for the run, and "
        "waits for this many workers started elsewhere to connect to LOCUST_MASTER_BIND_HOST:"
        "LOCUST_MASTER_BIND_PORT; it starts no worker itself. 0: LOCUST_WORKERS.",
    )
    locust_master_bind_host: str = Field(
        "127.0.0.1",
        description="LOCUST_EXPECT_WORKERS: where the master listens for its workers; 0.0.0.0 lets other "
        "machines connect (on a trusted network: nothing is authenticated).",
    )
    locust_master_bind_port: int = Field(5557, ge=1, le=65535, description="LOCUST_EXPECT_WORKERS: its port.")
    locust_expect_workers_wait_s: float = Field(
        120.0, gt=0, description="LOCUST_EXPECT_WORKERS: how long to wait for the workers before failing."
    )
    bench_queue_wait_ms: int = Field(
        1000,
        ge=0,
        description="Queue clients: ?wait_ms= of the submit (> 0: wait-or-queue, one request for a task done "
        "in time; 0: answered 202 at once, then polled). The burst and the faults experiment submit with 0.",
    )
    bench_queue_poll_wait_ms: int = Field(
        1000, ge=0, description="Queue user: ?wait_ms= of each poll (a long poll, so polling does not spin)."
    )
    bench_queue_timeout_s: float = Field(30.0, gt=0, description="Queue user: a task not done by then fails.")
    locust_failure_backoff_max_s: float = Field(
        1.0,
        ge=0,
        description="Locust users: longest wait after consecutive connection errors or 5xx (from 50 ms, "
        "doubling, jittered; reset by any other answer; 0: none). The locustfile's --failure-backoff-max-s.",
    )
    bench_burst_tasks: int = Field(100, ge=1, description="Burst: tasks (and requests) sent at once.")
    bench_burst_concurrencies: Annotated[list[int], NoDecode] = Field(
        [], min_length=1, description="Burst: the worker concurrencies (QUEUE_WORKER_CONCURRENCY) to try."
    )
    bench_burst_sizes: Annotated[list[int], NoDecode] = Field(
        [],
        description="Burst: more burst sizes (tasks at once), each measured like BENCH_BURST_TASKS after it; "
        "the report says at which size and worker concurrency the queue beats the direct handlers, if ever.",
    )

    # --- numbers a user can trust (doc/methodology.md) ---------------------------------------------
    bench_repeats: int = Field(
        0, ge=1, description="Repetitions of the decisive measurements (1-user p50, sustained, open loop)."
    )
    bench_repeat_one_user_s: float = Field(0, gt=0, description="A repetition's 1-user step.")
    bench_repeat_sustained_s: float = Field(0, gt=0, description="A repetition's step at the breaking users.")
    bench_open_fractions: Annotated[list[float], NoDecode] = Field(
        [0.25, 0.5, 0.7, 0.85, 1.0, 1.15],
        min_length=1,
        description="Open loop: offered rates as fractions of the ramp's capacity.",
    )
    bench_open_rates: Annotated[list[float], NoDecode] = Field(
        [], description="Open loop: offered rates in req/s (instead of the fractions), e.g. 100,200,400."
    )
    bench_open_step_s: float = Field(0, gt=0, description="Open loop: seconds per offered rate.")
    bench_open_arrivals: Arrivals = Field("poisson", description="Open loop: poisson or constant spacing.")
    bench_open_seed: int = Field(1, description="Open loop: seed of the Poisson arrivals.")
    bench_open_connections: int = Field(256, ge=1, description="Open loop: the generator's connections.")
    bench_open_p99_limit_ms: float | None = Field(
        None, gt=0, description="Open loop: the p99 a rate must stay under; unset: 2 × the 1-user p99."
    )
    bench_crosscheck_s: float = Field(0, gt=0, description="Cross-check: seconds of the independent load.")
    bench_verify_requests: int = Field(
        50, ge=0, description="Verification gate: requests per architecture before any load (0: no gate)."
    )
    bench_calibration_s: float = Field(
        3.0, gt=0, description="How long the quiet-machine check watches the other processes."
    )

    # --- the soak (doc/soak.md) ----------------------------------------------------------------------
    soak_s: float = Field(600.0, gt=0, description="Soak: seconds of constant load per architecture.")
    soak_fraction: float = Field(
        0.7, gt=0, le=2, description="Soak: the offered rate as a fraction of the architecture's capacity."
    )
    soak_rate: float | None = Field(
        None,
        gt=0,
        description="Soak: the offered rate in req/s for every architecture (instead of the fraction).",
    )
    soak_sample_s: float = Field(
        5.0, gt=0, description="Soak: how often every service process is sampled (RSS, fds, threads, TCP)."
    )
    soak_warmup_s: float = Field(60.0, ge=0, description="Soak: its start, left out of every growth number.")
    soak_window_s: float = Field(
        60.0, gt=0, description="Soak: the first and the last window compared (after the warm-up; a minute)."
    )
    soak_probe_s: float = Field(
        10.0,
        gt=0,
        description="Soak: the closed-loop capacity probe when no ramp ran and no SOAK_RATE is set.",
    )

    # --- faults under load (doc/faults.md) -------------------------------------------------------------
    bench_faults: Annotated[list[FaultName], NoDecode] = Field(
        list(FAULTS),
        description="Faults: which to inject, comma-separated: " + ",".join(FAULTS) + " (those that do not "
        "apply to an architecture or setting are listed as skipped, with why).",
    )
    bench_faults_fraction: float = Field(
        0.5, gt=0, le=2, description="Faults: the steady load as a fraction of the architecture's capacity."
    )
    bench_faults_rate: float | None = Field(
        None,
        gt=0,
        description="Faults: the steady load in req/s for every architecture (instead of the fraction).",
    )
    bench_faults_steady_s: float = Field(
        0, gt=0, description="Faults: seconds of steady load before a fault."
    )
    bench_faults_window_s: float = Field(
        0, gt=0, description="Faults: the fault window (a process down, or frozen, this long)."
    )
    bench_faults_recover_s: float = Field(
        0, gt=0, description="Faults: seconds of steady load after the window, to see the recovery."
    )
    bench_faults_probe_s: float = Field(
        0, gt=0, description="Faults: the closed-loop capacity probe when no ramp ran and no rate is set."
    )
    bench_faults_rabbitmq_node: str = Field(
        "",
        description="Faults: the RabbitMQ node (rabbitmqctl -n) whose app the broker-restart fault stops and "
        "starts when BROKER_URL is amqp://; empty: that fault is skipped (a shared broker is left alone).",
    )

    # --- the minimal control (issue 13 §5, doc/methodology.md) -----------------------------------------
    bench_control: bool = Field(
        False,
        description="Measure the async handler against the minimal control (api_scoring_minimal), started "
        "beside it on the main stack: on in quick and full when async is measured (with timeit, locust, "
        "openloop or crosscheck).",
    )
    bench_control_users: int = Field(64, ge=1, description="Control: wrk's connections (a closed loop each).")
    bench_control_s: float = Field(0, gt=0, description="Control: seconds of each throughput measurement.")
    bench_control_requests: int = Field(
        0, ge=2, description="Control: sequential requests (one user) per handler and repetition (the p50)."
    )

    bench_attribution_studies: Annotated[list[Study], NoDecode] = Field(
        ["waterfall", "fanout", "cpu", "tail", "queue", "engine", "servers", "batching"],
        description="Which attribution studies to run (queue: the queue's own waterfall; engine: its last "
        "step, the tuned queue on taskiq instead of Celery, QUEUE_ENGINE; servers: the scoring handlers' "
        "servers apart from their frameworks"
        "; batching: batched against async, BATCH_MAX_WAIT_MS × BATCH_MAX_SIZE, MODEL_BATCH_PER_ITEM_MS).",
    )
    bench_attribution_repeats: int = Field(0, ge=1, description="Repetitions of each waterfall step.")
    bench_attribution_timeit: int = Field(0, ge=2, description="Sequential requests per measurement.")
    bench_attribution_users: int = Field(64, ge=1, description="Users of each throughput measurement.")
    bench_attribution_load_s: float = Field(0, gt=0, description="Length of each throughput measurement.")
    bench_fanout: Annotated[list[int], NoDecode] = Field([], min_length=1, description="NUM_MODELS values.")
    # --- the attribution's batching study (benchmark/batching_sweep.py, doc/batching.md) ---------------
    bench_batching_waits_ms: Annotated[list[float], NoDecode] = Field(
        [], description="Batching study: the BATCH_MAX_WAIT_MS values of its grid (ms; empty: no grid)."
    )
    bench_batching_sizes: Annotated[list[int], NoDecode] = Field(
        [], description="Batching study: the BATCH_MAX_SIZE values of its grid (those ≤ MODEL_MAX_BATCH)."
    )
    bench_batching_per_item: Annotated[list[float], NoDecode] = Field(
        [],
        description="Batching study: the MODEL_BATCH_PER_ITEM_MS values it sweeps, as fractions of the "
        "model's mean latency (0.02: 0.9 ms of uniform 40-50 ms), at the run's batch settings.",
    )
    bench_servers_rounds: int = Field(0, ge=1, description="Servers study: rounds (each stack once a round).")
    bench_servers_timeit: int = Field(
        0, ge=2, description="Servers study: sequential requests per measurement."
    )
    bench_servers_load_s: float = Field(
        0, gt=0, description="Servers study: seconds of each throughput measurement."
    )

    @field_validator(
        "bench_open_fractions",
        "bench_open_rates",
        "experiments",
        "architectures",
        "bench_ramp_users",
        "bench_attribution_studies",
        "bench_fanout",
        "bench_batching_waits_ms",
        "bench_batching_sizes",
        "bench_batching_per_item",
        "bench_burst_concurrencies",
        "bench_burst_sizes",
        "bench_faults",
        mode="before",
    )
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.lstrip().startswith("["):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @field_validator("locust_workers", mode="before")
    @classmethod
    def _workers(cls, value: Any) -> Any:
        return AUTO if isinstance(value, str) and value.strip().lower() == AUTO else value

    @field_validator("locust_workers")
    @classmethod
    def _workers_not_negative(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 0:
            raise ValueError("LOCUST_WORKERS must be auto or a number >= 0")
        return value

    @model_validator(mode="before")
    @classmethod
    def _profile_defaults(cls, values: Any) -> Any:
        if not isinstance(values, dict):
            return values
        profile = str(values.get("bench_profile") or "quick").lower()
        if profile not in PROFILES:
            raise ValueError(f"BENCH_PROFILE must be one of {', '.join(PROFILES)}, got {profile!r}")
        return {**PROFILES[profile], **values}

    @model_validator(mode="after")
    def _targets_file_is_external(self) -> BenchSettings:
        """A targets file is read only against an external target: one given with BENCH_TARGET=local would
        be ignored without a word, and the runner would start its own stack instead."""
        if self.bench_targets_file is not None and self.bench_target == "local":
            raise ValueError(
                "BENCH_TARGETS_FILE names a targets file, which only an external target reads: set "
                "BENCH_TARGET=external (or use scoring-bench bench --targets FILE)"
            )
        return self

    def runs_control(self) -> bool:
        """Whether this run measures the async handler against the minimal control (BENCH_CONTROL)."""
        main_stack = any(name in self.experiments for name in CONTROL_EXPERIMENTS)
        return self.bench_control and "async" in self.architectures and main_stack

    def targets(self, stack: Settings | None = None) -> Targets:
        """Every service under test (benchmark/external.py): URLs and metrics URLs. Local: the stack
        ``stack`` (default: :meth:`stack_settings`) the runner starts; external: TARGET_HOST and the port
        settings, overridden by BENCH_TARGETS_FILE. Raises TargetsError for a bad targets file."""
        file_path = self.bench_targets_file if self.bench_target == "external" else None
        return resolve_targets(
            stack or self.stack_settings(),
            self.bench_target,
            self.target_host,
            load_targets_file(file_path) if file_path is not None else None,
            file_path,
            getattr(self, "prometheus_url", None),  # PROMETHEUS_URL, when the settings have it
        )

    def stack_settings(self) -> Settings:
        """The stack's own settings (what the services are started with). External: the stack as it was
        deployed, HOST being TARGET_HOST (where its embedded Redis is, unless REDIS_URL says) and
        SERVICE_URLS naming every service's base URL from the targets: how every experiment reaches it."""
        stack = Settings(**{name: getattr(self, name) for name in Settings.model_fields})
        if self.bench_target == "external":
            urls = self.targets(stack).urls()
            stack = stack.model_copy(update={"host": self.target_host, "service_urls": urls})
        return stack
