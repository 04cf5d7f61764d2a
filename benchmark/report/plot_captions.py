"""What each plot shows, as the report says it under the image."""

from __future__ import annotations

PLOT_CAPTIONS = {
    "latency": "Latency distributions, architectures overlaid; dashed: ideal p50, solid: measured p50.",
    "ramp": "Throughput and p95 latency against users; ✕ marks the breaking point.",
    "cpu": "CPU per process during the sustained phase (% of one core); shaded: warm-up, not counted.",
    "time_split": "Where a request's server time goes (mean, from Server-Timing; the queue: its task's "
    "timings, and the time before and after the task; batched: the slowest model's wait for its batch to be "
    "sent, then its batch call); black bar: ideal mean.",
    "waterfall": "From seed-faithful to tuned, one factor at a time: p50 at one user and req/s per "
    "architecture; green: the factor helped, orange: it hurt; error bars: min–max over "
    "repetitions.",
    "queue_waterfall": "The queue from seed-faithful (Celery's defaults, polled plainly) to tuned, one "
    "factor at a time: p50 at one user (dashed: the tuned queue's ideal) and completed tasks/s; green: the "
    "factor helped, orange: it hurt; error bars: min–max over repetitions.",
    "fanout": "p50 at one user and req/s against the model calls per request; dashed: the ideal p50 (sum of "
    "the calls for sequential calls, their maximum for concurrent ones).",
    "batching": "Batching against async. Left: each BATCH_MAX_WAIT_MS / BATCH_MAX_SIZE of the grid, its p50 "
    "cost at one user against its throughput gain (dashed: no gain). Right: batched ÷ async req/s against "
    "MODEL_BATCH_PER_ITEM_MS, measured and as the closed-loop model predicts; vertical lines: break-evens.",
    "queue_depth": "Tasks waiting in the broker (sampled from it) during each load phase of the queue.",
    "openloop": "Open loop: p99 (solid) and p50 (dashed) from each request's scheduled send time against the "
    "offered rate; dotted: each architecture's p99 limit; hollow: rates the generator could not hold.",
    "burst": "Burst: results available over time (tasks submitted at once; the direct handlers: the same "
    "requests at once) and the queue's depth, per worker concurrency.",
    "soak": "Soak: every process of each architecture's path over time (RSS, open descriptors, TCP "
    "connections); grey: the warm-up, left out; green: the first and the last minute, compared.",
    "soak_p99": "Soak: p99 (solid) and p50 (dashed) of the requests scheduled in each minute, from their "
    "scheduled send time; below, the machine's CPU (solid) and that of processes outside the run (dotted).",
}
QUEUE_PLOTS = ("queue_depth", "burst")  # shown in their own sections, not under "Plots"
# shown in the attribution section, not under "Plots"
ATTRIBUTION_PLOTS = ("waterfall", "queue_waterfall", "fanout", "batching")
RAW_FILE_PLOTS = (
    "latency",
    "cpu",
    "queue_depth",
    "burst",
    "soak",
)  # drawn from the raw files, not the summary
