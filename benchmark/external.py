"""Where the services under test are: the stack the harness starts, or one someone else started.

``BENCH_TARGET=local`` (the default): the runner starts its own stack and every service is at
``http://HOST:<its port setting>``. ``BENCH_TARGET=external``: the harness starts nothing; every service
is at ``http://TARGET_HOST:<its port setting>`` (the same port settings ``make up`` uses, so
``SCORING_SYNC_PORT=15001 ... make up`` and then the same environment with ``BENCH_TARGET=external``
just works), and a targets file (``--targets targets.yaml`` or ``BENCH_TARGETS_FILE``) overrides any
service's base URL and the metrics URLs its resources are read from (several pods or processes: summed)::

    services:                # names as in scoring_bench/stack/servers.py
      scoring-sync:
        url: http://10.0.0.5:5001
        metrics: [http://10.0.0.5:5001/metrics, http://10.0.0.6:5001/metrics]
      queue-worker:
        metrics: [http://10.0.0.7:8003/metrics]
    prometheus_url: http://prometheus:9090   # optional: resources from Prometheus's HTTP API

The file is validated as a whole before anything runs: a misspelt service or key, a URL that is not
``http(s)://host...``, a URL for the worker (which serves no HTTP) each fail with the place named.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import redis
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from benchmark.summary import SkippedExperiment, StackTarget, TargetService
from scoring_bench.core.endpoints import HEALTH_PATH
from scoring_bench.core.settings import Settings
from scoring_bench.service.metrics import METRICS_PATH
from scoring_bench.stack.probes import check_health, http_get
from scoring_bench.stack.servers import CONTROL, SERVICES, Service, stack_services
from scoring_bench.stack.supervisor import StackState

BenchTarget = Literal["local", "external"]
KNOWN_SERVICES: tuple[Service, ...] = (*SERVICES, CONTROL)


class TargetsError(ValueError):
    """The targets file cannot be used; the message names the file and the place in it."""


def _http_url(value: str) -> str:
    """An ``http(s)://host[:port][/prefix]`` URL without a trailing slash (paths are appended to it)."""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{value!r} is not an http:// or https:// URL with a host")
    if parts.query or parts.fragment:
        raise ValueError(f"{value!r}: a base URL takes no ?query or #fragment")
    return value.strip().rstrip("/")


class ServiceTarget(BaseModel):
    """One service's entry in the targets file: both keys optional (missing: the default)."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(None, description="Base URL; the product's paths are appended to it.")
    metrics: list[str] | None = Field(
        None, description="Its /metrics URLs, summed (one per pod or process); []: not sampled."
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else _http_url(value)

    @field_validator("metrics")
    @classmethod
    def _metrics(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else [_http_url(v) for v in value]


class TargetsFile(BaseModel):
    """The targets file as written (``--targets``): per-service overrides and an optional Prometheus."""

    model_config = ConfigDict(extra="forbid")

    services: dict[str, ServiceTarget] = Field(default_factory=dict)
    prometheus_url: str | None = None

    @field_validator("services", mode="before")
    @classmethod
    def _names(cls, value: object) -> object:
        """Only known services; ``scoring-sync:`` with nothing under it means "the defaults"."""
        if isinstance(value, dict):
            known = [s.name for s in KNOWN_SERVICES]
            unknown = [str(k) for k in value if k not in known]
            if unknown:  # before the entries: a misspelt name is the first thing to fix
                raise ValueError(
                    f"unknown service {', '.join(map(repr, unknown))}; known: {', '.join(known)}"
                )
            return {k: ({} if v is None else v) for k, v in value.items()}
        return value

    @field_validator("services")
    @classmethod
    def _known(cls, value: dict[str, ServiceTarget]) -> dict[str, ServiceTarget]:
        known = {s.name: s for s in KNOWN_SERVICES}
        for name, entry in value.items():
            if entry.url is not None and not known[name].listens:
                raise ValueError(f"{name} serves no HTTP: give it only metrics (its metrics port's /metrics)")
        return value

    @field_validator("prometheus_url")
    @classmethod
    def _prometheus(cls, value: str | None) -> str | None:
        return None if value is None else _http_url(value)


class Target(BaseModel):
    """One service as the benchmark reaches it."""

    name: str
    url: str | None  # base URL; None: serves no HTTP (the queue's worker)
    metrics: list[str]

    @property
    def health_url(self) -> str | None:
        return None if self.url is None else self.url + HEALTH_PATH


class Targets(BaseModel):
    """Every service under test, resolved: what the runner checks, drives and samples."""

    mode: BenchTarget
    services: list[Target]
    prometheus_url: str | None = None
    file: str | None = None  # the targets file it came from, if any

    def get(self, name: str) -> Target:
        for target in self.services:
            if target.name == name:
                return target
        raise KeyError(f"no target {name!r}; targets: {', '.join(t.name for t in self.services)}")

    def url(self, name: str) -> str:
        """A service's base URL (``KeyError``/``ValueError`` when it has none)."""
        url = self.get(name).url
        if url is None:
            raise ValueError(f"{name} serves no HTTP")
        return url

    def urls(self) -> dict[str, str]:
        """Service name -> base URL, for every service that serves HTTP."""
        return {t.name: t.url for t in self.services if t.url is not None}

    def metrics_urls(self) -> dict[str, list[str]]:
        """Service name -> its /metrics URLs (summed by the resource sampler); services with none left out."""
        return {t.name: list(t.metrics) for t in self.services if t.metrics}


def load_targets_file(path: Path) -> TargetsFile:
    """Read and validate a targets file; :class:`TargetsError` says what is wrong and where."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise TargetsError(f"targets file {path}: cannot be read ({exc.strerror or exc})") from exc
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise TargetsError(f"targets file {path}: not valid YAML{where}: {problem}") from exc
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise TargetsError(
            f"targets file {path}: expected a mapping with 'services' (and optionally 'prometheus_url'), "
            f"got {type(raw).__name__}"
        )
    try:
        return TargetsFile.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: "
            + err["msg"].removeprefix("Value error, ")
            for err in exc.errors()
        )
        raise TargetsError(f"targets file {path}: {problems}") from exc


def default_target(svc: Service, settings: Settings, host: str) -> Target:
    """Where a service is by default: ``http://host:<its port setting>``, its ``/metrics`` there (the
    queue's worker: its metrics port's)."""
    base = f"http://{host}:{{}}"
    url = base.format(svc.port(settings)) if svc.listens else None
    return Target(name=svc.name, url=url, metrics=[base.format(svc.metrics_port(settings)) + METRICS_PATH])


def resolve_targets(
    settings: Settings,
    mode: BenchTarget = "local",
    target_host: str = "127.0.0.1",
    file: TargetsFile | None = None,
    file_path: Path | None = None,
    prometheus_url: str | None = None,
) -> Targets:
    """Every service under test. Local: the stack's own services (the control when it runs) at ``HOST``.
    External: the product's services at ``target_host``, each overridden by ``file``; the minimal
    control only when the file gives its URL (an external stack does not run it otherwise).
    ``prometheus_url``: the setting's, which the file's wins over."""
    file = file or TargetsFile()
    if mode == "local":
        services = stack_services(settings)
        host = settings.host
    else:
        services = tuple(s for s in KNOWN_SERVICES if s in SERVICES or s.name in file.services)
        host = target_host
    targets = []
    for svc in services:
        target = default_target(svc, settings, host)
        entry = file.services.get(svc.name) if mode == "external" else None
        if entry is not None:
            url = entry.url if entry.url is not None else target.url
            # a new base URL moves the default /metrics with it (a service's metrics are on its own port)
            metrics = target.metrics if url == target.url or url is None else [url + METRICS_PATH]
            target = Target(
                name=svc.name, url=url, metrics=entry.metrics if entry.metrics is not None else metrics
            )
        targets.append(target)
    return Targets(
        mode=mode,
        services=targets,
        prometheus_url=file.prometheus_url or prometheus_url,
        file=str(file_path) if file_path is not None else None,
    )


# --------------------------------------------------------------------------- the runner in external mode

# What the runner skips against a stack it did not start, and why: each needs to start, restart, kill or
# reach into the stack's own processes. ``profile`` is only its server side (the client profiles run).
SKIP_REASONS: dict[str, str] = {
    "profile": "server-side profiling restarts every service with a profiler inside (PROFILER); "
    "the client-side profiles ran",
    "burst": "it restarts the queue's worker at each concurrency of BENCH_BURST_CONCURRENCIES",
    "attribution": "its waterfalls start a stack of their own for every step (settings that need a restart), "
    "the queue's cost too",
    "faults": "it kills, freezes and restarts the stack's processes",
    "control": "the minimal control (api_scoring_minimal) is started by the harness beside the async "
    "handler; give scoring-minimal's url in the targets file to measure it",
}
# What runs, but without a part that needs the stack's processes on this machine.
PARTIAL_NOTES: dict[str, str] = {
    "soak": "its per-process growth (RSS, file descriptors, threads, connections of each process) is not "
    "measured: the target's processes are not on this machine; its latency over time is, and the services' "
    "memory over it is in resources/soak_<arch>.csv (from their metrics)",
    "control": "the handlers' CPU per request is not measured: their processes are not on this machine",
}
HEALTH_TIMEOUT_S = 5.0


class TargetDown(RuntimeError):
    """A target does not answer its health check: nothing is measured (the message names the URL)."""


def stack_target(targets: Targets, skips: list[SkippedExperiment], problems: list[str]) -> StackTarget:
    """What the run's environment records about its target (environment.json's ``target``)."""
    return StackTarget(
        mode=targets.mode,
        services=[TargetService(name=t.name, url=t.url, metrics=t.metrics) for t in targets.services],
        prometheus_url=targets.prometheus_url,
        file=targets.file,
        skipped=skips,
        problems=problems,
    )


def has_control(targets: Targets) -> bool:
    """Whether the targets name the minimal control (external: only when the targets file gives its url)."""
    return any(t.name == CONTROL.name for t in targets.services)


def skipped(targets: Targets, experiments: list[str], wants_control: bool) -> list[SkippedExperiment]:
    """What of ``experiments`` (and of the control, when the run would measure it) the runner skips or
    runs only in part against ``targets``. Local: nothing."""
    if targets.mode == "local":
        return []
    rows = [
        SkippedExperiment(experiment=name, reason=SKIP_REASONS[name])
        for name in experiments
        if name in SKIP_REASONS
    ]
    if wants_control:
        rows.append(
            SkippedExperiment(experiment="control (in part)", reason=PARTIAL_NOTES["control"])
            if has_control(targets)
            else SkippedExperiment(experiment="control", reason=SKIP_REASONS["control"])
        )
    if "soak" in experiments:
        rows.append(SkippedExperiment(experiment="soak (in part)", reason=PARTIAL_NOTES["soak"]))
    return rows


def redis_problem(url: str, timeout_s: float = HEALTH_TIMEOUT_S) -> str | None:
    """Why the Redis at ``url`` does not answer a PING from here; None when it does."""
    try:
        client = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
        try:
            client.ping()
        finally:
            client.close()
    except (redis.RedisError, OSError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def gate_skip(targets: Targets, stack: Settings, verify_requests: int) -> SkippedExperiment | None:
    """The verification gate against an external target when its feature store cannot be reached from
    here: the gate counts the feature-store reads on that Redis (INFO, MONITOR), so it is skipped, saying
    where it looked (no credentials shown). None: it runs (or was not asked for, or the stack is local)."""
    if targets.mode == "local" or verify_requests == 0:
        return None
    problem = redis_problem(stack.feature_store_url)
    if problem is None:
        return None
    parts = urlsplit(stack.feature_store_url)
    where = f"{parts.scheme}://{parts.hostname}:{parts.port or 6379}{parts.path}"
    return SkippedExperiment(
        experiment="verification gate",
        reason=f"it counts the feature-store reads on the stack's Redis, and {where} does not answer from "
        f"here ({problem}): set REDIS_URL (or TARGET_HOST and EMBEDDED_REDIS_PORT) to where it answers",
    )


def check_targets(targets: Targets, names: list[str], timeout_s: float = HEALTH_TIMEOUT_S) -> list[str]:
    """Fail fast (:class:`TargetDown`, naming every URL that failed) unless each of ``names`` with a URL
    answers its health check; return the metrics URLs that do not answer (warnings: the measurements run,
    those services' resources are missing)."""
    down = []
    for name in names:
        target = targets.get(name)
        if target.health_url is None:
            continue
        healthy, detail = check_health(target.health_url, timeout_s)
        if not healthy:
            down.append(f"{name} at {target.health_url}: {detail}")
    if down:
        raise TargetDown(
            "the external target is not healthy, nothing was measured: "
            + "; ".join(down)
            + " (is the stack up? are TARGET_HOST, the port settings and the targets file right?)"
        )
    missing = []
    for target in targets.services:
        for url in target.metrics:
            try:
                status, _ = http_get(url, timeout_s)
            except OSError as exc:
                missing.append(f"{target.name} metrics at {url}: unreachable ({type(exc).__name__})")
                continue
            if status != 200:
                missing.append(f"{target.name} metrics at {url}: HTTP {status}")
    return missing


def health_names(targets: Targets, architectures: list[str]) -> list[str]:
    """The services the run needs healthy: the model APIs, each measured architecture's handler, the
    control when the targets name it (the queue's worker has no health URL: the queue API's says
    whether a worker answers)."""
    wanted = {"model-sync", "model-async", CONTROL.name, *(f"scoring-{arch}" for arch in architectures)}
    return [t.name for t in targets.services if t.name in wanted]


@contextmanager
def external_stack(stack: Settings) -> Iterator[StackState]:
    """The stack someone else started, as the experiments see a running stack: its Redis URL and no
    process of this machine (nothing to sample by pid, nothing to stop). Started, restarted and stopped
    by nobody here."""
    yield StackState(redis_url=stack.feature_store_url, processes=[])
