"""What differs between the two sides of a comparison, computed from the settings each side ran with.

A *side* is one architecture on one stack's settings. :func:`side_config` turns the settings into the
configuration that architecture really runs with, as labelled values ("scoring processes": "2"); a
setting the architecture never reads is not part of its side (the sync handler's thread count is not
the async side's). :func:`differences` lists the labels whose values differ, so that the report can
print "differs: …" under every comparison without a hand-written list, and :func:`confounds` tells
which of them are neither the comparison's factor nor a declared consequence of it.

A study checks its own configurations at the level of the settings themselves with
:func:`changed_settings` (tests/unit/test_study_configs.py): a new default cannot silently confound it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from benchmark.summary import Differs, SettingDifference
from scoring_bench.core.settings import Settings

# Labels of a side, in the order the report prints them.
FRAMEWORK = "framework"
SCORING_SERVER = "scoring server"
SCORING_PROCESSES = "scoring processes"
SCORING_CONCURRENCY = "concurrency per scoring process"
MODEL_API = "model API"
MODEL_PROCESSES = "model API processes"
MODEL_CONCURRENCY = "concurrency per model API process"
HTTP_CLIENT = "HTTP client"
CLIENT_LIFETIME = "HTTP client lifetime"
REDIS_CLIENT = "Redis client"
MODEL_CALLS = "model calls"
GC = "garbage collector"
BATCHING = "batching"
QUEUE_WORKER = "queue worker"
BROKER = "broker"
QUEUE_WAKEUP = "queue wake-up"
QUEUE_PUBLISH = "queue publish"
QUEUE_SERIALIZER = "queue serializer"
QUEUE_MESSAGES = "queue message repr"
QUEUE_BROKER_CLIENT = "queue broker client"
QUEUE_PREFETCH = "queue prefetch"
QUEUE_ACKS = "queue acks"
QUEUE_RESULTS = "queue result bookkeeping"
QUEUE_TUNING = (
    QUEUE_WAKEUP,
    QUEUE_PUBLISH,
    QUEUE_SERIALIZER,
    QUEUE_MESSAGES,
    QUEUE_BROKER_CLIENT,
    QUEUE_PREFETCH,
    QUEUE_ACKS,
    QUEUE_RESULTS,
)
MODELS_PER_REQUEST = "models per request"
MODEL_KIND = "model kind"
MODEL_LATENCY = "model latency"
BATCH_COST = "batch cost per item"
FEATURE_STORE = "feature store"
METRICS = "metrics"
PROFILER = "profiler"

# What comparing two architectures changes by definition: the server and framework each is built on,
# how it runs concurrent work, the clients that fit it, and whether its model calls overlap. Process
# counts are not among them: each architecture's are a setting, and a comparison at unequal counts says so.
ARCHITECTURE_CONSEQUENCES = frozenset(
    {
        FRAMEWORK,
        SCORING_SERVER,
        SCORING_CONCURRENCY,
        MODEL_API,
        MODEL_CONCURRENCY,
        HTTP_CLIENT,
        REDIS_CLIENT,
        MODEL_CALLS,
        GC,
        BATCHING,
        QUEUE_WORKER,
        BROKER,
        *QUEUE_TUNING,
        BATCH_COST,
    }
)

# Settings that say where a stack runs, not what it is: never a difference between two sides (nor is
# any ``*_port``).
PLUMBING = frozenset(
    {
        "host",
        "service_urls",
        "model_sync_url",
        "model_async_url",
        "redis_key_prefix",
        "embedded_redis_port",
        "redis_server_bin",
        "stack_dir",
        "profile_dir",
        "health_timeout_s",
        "prometheus_port",
        "queue_worker_metrics_port",
        "queue_name",
        "monitoring",
        "scoring_preset",  # a preset only fills in other settings: those are compared
    }
)


@dataclass(frozen=True)
class Difference:
    name: str
    a: str
    b: str

    def __str__(self) -> str:
        return f"{self.name} {self.a} vs {self.b}"


def side_config(settings: Settings, arch: str) -> dict[str, str]:
    """The configuration ``arch`` runs with under ``settings``: its own servers, then the workload."""
    try:
        own = _SIDES[arch](settings)
    except KeyError:
        raise ValueError(f"unknown architecture {arch!r}; known: {', '.join(_SIDES)}") from None
    return {**own, **_workload(settings, arch)}


def differences(a: dict[str, str], b: dict[str, str]) -> list[Difference]:
    """The labels whose values differ, in ``a``'s order (a label only one side has: "–" on the other)."""
    names = list(a) + [name for name in b if name not in a]
    return [
        Difference(name, a.get(name, "–"), b.get(name, "–")) for name in names if a.get(name) != b.get(name)
    ]


def compare_sides(a: Settings, arch_a: str, b: Settings, arch_b: str) -> list[Difference]:
    return differences(side_config(a, arch_a), side_config(b, arch_b))


def confounds(diffs: Iterable[Difference], allowed: Collection[str]) -> list[Difference]:
    """The differences that are neither the factor under study nor a declared consequence of it."""
    return [diff for diff in diffs if diff.name not in allowed]


def describe(diffs: Iterable[Difference], archs: tuple[str, str] | None = None) -> str:
    """``differs: scoring processes 2 vs 1; model API processes 2 vs 1`` (``differs: nothing``).

    With two different architectures, their inherent differences (:data:`ARCHITECTURE_CONSEQUENCES`) are
    one item, ``architecture sync vs async``, and the rest follow it."""
    parts = [str(diff) for diff in diffs]
    if archs is not None and archs[0] != archs[1]:
        parts = [f"architecture {archs[0]} vs {archs[1]}"] + [
            str(diff) for diff in confounds(diffs, ARCHITECTURE_CONSEQUENCES)
        ]
    return "differs: " + ("; ".join(parts) if parts else "nothing")


def comparison_line(a: Settings, arch_a: str, b: Settings, arch_b: str) -> str:
    """The report's line under a comparison of ``arch_a`` on ``a`` with ``arch_b`` on ``b``."""
    return describe(compare_sides(a, arch_a, b, arch_b), (arch_a, arch_b))


ARCHITECTURE = "architecture"  # the factor of a comparison between two architectures
QUEUE_CLIENT = "queue client"  # a queue waterfall's side: how its client waits (config.json "client")


def comparison_differs(
    a: Settings,
    arch_a: str,
    b: Settings,
    arch_b: str,
    *,
    sides: tuple[str, str] | None = None,
    factor: str | None = None,
    allowed: Collection[str] | None = None,
    extra: tuple[Mapping[str, str], Mapping[str, str]] = ({}, {}),
) -> Differs:
    """What differs between ``arch_a`` on ``a`` and ``arch_b`` on ``b``, for the summary and the report.

    ``allowed``: the labels the comparison's factor explains (itself and its consequences); the rest are
    its confounds. None: not judged. ``extra``: labels of each side that are not stack settings (the
    queue's client). Two architectures are judged by :data:`ARCHITECTURE_CONSEQUENCES` unless ``allowed``
    says otherwise."""
    diffs = differences({**side_config(a, arch_a), **extra[0]}, {**side_config(b, arch_b), **extra[1]})
    across = arch_a != arch_b
    if across and factor is None:
        factor = ARCHITECTURE
    return Differs(
        a=sides[0] if sides else arch_a,
        b=sides[1] if sides else arch_b,
        line=describe(diffs, (arch_a, arch_b)),
        settings=[_setting(diff) for diff in diffs],
        factor=factor or "",
        allowed=sorted(allowed) if allowed is not None else None,
        confounds=[_setting(diff) for diff in confounds(diffs, allowed)] if allowed is not None else [],
    )


def architecture_differs(
    settings: Settings, arch_a: str, arch_b: str, *, judged: bool = True, sides: tuple[str, str] | None = None
) -> Differs:
    """Two architectures on the same stack: the factor is the architecture; ``judged`` False (the
    headline: each at its tuned default is a legitimate choice) leaves the rest unflagged."""
    allowed = ARCHITECTURE_CONSEQUENCES if judged else None
    return comparison_differs(settings, arch_a, settings, arch_b, sides=sides, allowed=allowed)


def factor_labels(before: Settings, after: Settings, names: Iterable[str], arch: str) -> set[str]:
    """The labels of ``arch``'s side that change when only the settings ``names`` change from their
    values in ``before`` to those in ``after``: what a study's factor explains."""
    known = [name for name in names if name in Settings.model_fields]
    moved = before.model_copy(update={name: getattr(after, name) for name in known})
    return {diff.name for diff in compare_sides(before, arch, moved, arch)}


def overridden(before: Mapping[str, Any], after: Mapping[str, Any]) -> set[str]:
    """The settings two configurations' overrides set differently (a study's factor, as it planned it)."""
    return {name for name in {*before, *after} if before.get(name) != after.get(name)}


def beyond_architecture(differs: Differs) -> list[SettingDifference]:
    """The differences of a comparison between architectures that the architecture does not imply."""
    return [diff for diff in differs.settings if diff.name not in ARCHITECTURE_CONSEQUENCES]


def _setting(diff: Difference) -> SettingDifference:
    return SettingDifference(name=diff.name, a=diff.a, b=diff.b)


def changed_settings(
    a: Settings, b: Settings, ignore: Collection[str] = PLUMBING
) -> dict[str, tuple[Any, Any]]:
    """Every setting whose value differs between two stacks, apart from where they run."""
    first, second = a.model_dump(), b.model_dump()
    return {
        name: (first[name], second[name])
        for name in first
        if name not in ignore and not name.endswith("_port") and first[name] != second.get(name)
    }


# --- the sides ------------------------------------------------------------------------------------


def _sync_worker(worker_class: str, threads: int) -> str:
    if worker_class == "gthread":
        return f"{threads} threads"
    if worker_class == "gevent":
        return f"{threads} greenlets"
    if worker_class == "meinheld":
        return "event loop (meinheld)"
    return "1 request"


def _async_server(settings: Settings) -> str:
    if settings.scoring_async_server == "granian":
        return f"granian ASGI ({settings.async_loop})"
    return f"uvicorn ({settings.async_loop}, {settings.async_http})"


def _model_api(settings: Settings, kind: str) -> dict[str, str]:
    if kind == "sync":
        return {
            MODEL_API: f"Flask · gunicorn {settings.model_sync_worker_class}",
            MODEL_PROCESSES: str(settings.model_sync_workers),
            MODEL_CONCURRENCY: _sync_worker(settings.model_sync_worker_class, settings.model_sync_threads),
        }
    return {
        MODEL_API: f"FastAPI · uvicorn ({settings.async_loop})",
        MODEL_PROCESSES: str(settings.model_async_workers),
        MODEL_CONCURRENCY: "event loop",
    }


def _model_calls(settings: Settings, arch: str) -> str:
    if arch == "batched":
        return "concurrent, batched across requests"
    return "concurrent" if settings.concurrent_model_calls(arch) else "sequential"  # type: ignore[arg-type]


def _sync(settings: Settings) -> dict[str, str]:
    if settings.scoring_sync_server == "granian":
        server = "granian WSGI"
        concurrency = f"{settings.scoring_sync_threads} threads"
    else:
        server = f"gunicorn {settings.scoring_sync_worker_class}"
        concurrency = _sync_worker(settings.scoring_sync_worker_class, settings.scoring_sync_threads)
    return {
        FRAMEWORK: "Flask",
        SCORING_SERVER: server,
        SCORING_PROCESSES: str(settings.scoring_sync_workers),
        SCORING_CONCURRENCY: concurrency,
        **_model_api(settings, "sync"),
        HTTP_CLIENT: settings.sync_http_client,
        CLIENT_LIFETIME: f"per {settings.http_client_lifetime}",
        REDIS_CLIENT: "redis-py (blocking)",
        MODEL_CALLS: _model_calls(settings, "sync"),
    }


def _async(settings: Settings) -> dict[str, str]:
    return {
        FRAMEWORK: "FastAPI",
        SCORING_SERVER: _async_server(settings),
        SCORING_PROCESSES: str(settings.scoring_async_workers),
        SCORING_CONCURRENCY: "event loop",
        **_model_api(settings, "async"),
        HTTP_CLIENT: settings.async_http_client,
        CLIENT_LIFETIME: f"per {settings.http_client_lifetime}",
        REDIS_CLIENT: "redis.asyncio" if settings.async_redis_client == "asyncio" else "redis-py (blocking)",
        MODEL_CALLS: _model_calls(settings, "async"),
        GC: f"threshold {settings.scoring_async_gc_threshold}",
    }


def _batched(settings: Settings) -> dict[str, str]:
    return {
        **_async(settings),
        SCORING_SERVER: f"uvicorn ({settings.async_loop}, {settings.async_http})",
        SCORING_PROCESSES: str(settings.scoring_batched_workers),
        MODEL_CALLS: _model_calls(settings, "batched"),
        BATCHING: f"up to {settings.batch_max_size} or {settings.batch_max_wait_ms:g} ms",
    }


def _broker(settings: Settings) -> str:
    if settings.broker_url is None:
        return "embedded Redis" if settings.redis_url is None else "the feature store's Redis"
    return urlsplit(settings.broker_url).scheme or settings.broker_url


def _queue_tuning(settings: Settings) -> dict[str, str]:
    """The queue's own choices, one label each (the queue's waterfall switches them one at a time)."""
    success = "read before SUCCESS" if settings.queue_result_read_before_success else "SUCCESS stored unread"
    return {
        QUEUE_WAKEUP: settings.queue_wakeup,
        QUEUE_PUBLISH: settings.queue_publish,
        QUEUE_SERIALIZER: settings.queue_serializer,
        QUEUE_MESSAGES: settings.queue_message_repr,
        QUEUE_BROKER_CLIENT: f"per {settings.queue_broker_client}",
        QUEUE_PREFETCH: f"×{settings.queue_prefetch_multiplier}",
        QUEUE_ACKS: "late" if settings.queue_acks_late else "early",
        QUEUE_RESULTS: (
            f"STARTED {'stored' if settings.queue_track_started else 'not stored'}, "
            f"{success}, "
            f"kept {settings.queue_result_expires_s:,} s"
        ),
    }


def _queue(settings: Settings) -> dict[str, str]:
    return {
        FRAMEWORK: f"FastAPI API + {settings.queue_engine} worker",
        SCORING_SERVER: "uvicorn",
        SCORING_PROCESSES: str(settings.scoring_queue_workers),
        QUEUE_WORKER: (
            f"{settings.queue_engine} {settings.queue_worker_pool} ×{settings.queue_worker_concurrency}"
        ),
        BROKER: _broker(settings),
        **_queue_tuning(settings),
        **_model_api(settings, settings.queue_model_api),
        HTTP_CLIENT: settings.sync_http_client,  # the worker scores with the sync handler's scorer
        CLIENT_LIFETIME: f"per {settings.http_client_lifetime}",
        REDIS_CLIENT: "redis-py (blocking)",
        MODEL_CALLS: _model_calls(settings, "queue"),
    }


_SIDES: dict[str, Callable[[Settings], dict[str, str]]] = {
    "sync": _sync,
    "async": _async,
    "batched": _batched,
    "queue": _queue,
}


def _latency(settings: Settings) -> str:
    if settings.model_latency == "uniform":
        return f"uniform {settings.model_latency_min_ms:g}–{settings.model_latency_max_ms:g} ms"
    if settings.model_latency == "fixed":
        return f"fixed {settings.model_latency_fixed_ms:g} ms"
    if settings.model_latency == "lognormal":
        return f"lognormal median {settings.model_latency_median_ms:g} ms, σ {settings.model_latency_sigma:g}"
    return str(settings.model_latency)


def _workload(settings: Settings, arch: str) -> dict[str, str]:
    """What every architecture is asked to do, and what watches it."""
    workload = {
        MODELS_PER_REQUEST: str(settings.num_models),
        MODEL_KIND: settings.model_kind,
        MODEL_LATENCY: _latency(settings),
        FEATURE_STORE: (
            f"{settings.num_entities:,} entities × {settings.num_stored_features} features, "
            + ("embedded Redis" if settings.redis_url is None else "external Redis")
        ),
        METRICS: "on" if settings.metrics_enabled else "off",
        PROFILER: settings.profiler,
    }
    if arch == "batched":
        workload[BATCH_COST] = f"{settings.model_batch_per_item_ms:g} ms"
    return workload
