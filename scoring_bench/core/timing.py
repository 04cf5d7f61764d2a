"""Timing of a scoring request and its ``Server-Timing`` header."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field

FEATURE_STORE_STEP = "feature_store"
MODEL_STEP_PREFIX = "model_"
QUEUED_STEP = "queued"  # the queue's task: from the API's submit to the task's start (not in its total)
# The batching handler (doc/batching.md): per model, the request's wait for its batch to be sent (a step,
# ms) and the size of the batch it rode in (a note: Server-Timing's desc, not a duration).
BATCH_WAIT_PREFIX = "batch_wait_"
BATCH_SIZE_PREFIX = "batch_size_"


def batch_wait_step(model_id: int) -> str:
    return f"{BATCH_WAIT_PREFIX}{model_id}"


def batch_size_note(model_id: int) -> str:
    return f"{BATCH_SIZE_PREFIX}{model_id}"


def model_step(model_id: int) -> str:
    """The step of one model call: ``model_0``, ``model_1``, ..."""
    return f"{MODEL_STEP_PREFIX}{model_id}"


@dataclass
class Timings:
    """Milliseconds spent per step of one request, in the order they ran."""

    start: float = field(default_factory=time.perf_counter)
    steps: dict[str, float] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)  # values without a duration (a batch's size)

    def add(self, name: str, started: float) -> float:
        """Record the step that began at ``started`` (a perf_counter value)."""
        ms = (time.perf_counter() - started) * 1000.0
        self.steps[name] = ms
        return ms

    def total_ms(self) -> float:
        return (time.perf_counter() - self.start) * 1000.0

    def header(self) -> str:
        """``Server-Timing`` value: every step, every note (``name;desc=value``), then ``total``."""
        parts = [f"{name};dur={ms:.3f}" for name, ms in self.steps.items()]
        parts += [f"{name};desc={value}" for name, value in self.notes.items()]
        parts.append(f"total;dur={self.total_ms():.3f}")
        return ", ".join(parts)


def _server_timing_params(value: str) -> Iterator[tuple[str, str, str]]:
    """(entry, parameter, its value) for every parameter of every entry of a Server-Timing header."""
    for part in value.split(","):
        name, _, params = part.strip().partition(";")
        for param in params.split(";"):
            key, _, text = param.strip().partition("=")
            yield name, key, text


def parse_server_timing(value: str) -> dict[str, float]:
    """Inverse of :meth:`Timings.header`, for clients and the benchmark."""
    return {name: float(text) for name, key, text in _server_timing_params(value) if key == "dur"}


def parse_server_timing_notes(value: str) -> dict[str, str]:
    """The ``desc`` of each entry that has one (the batching handler's batch sizes)."""
    return {name: text.strip('"') for name, key, text in _server_timing_params(value) if key == "desc"}


def ordered_steps(steps: dict[str, float], num_models: int) -> dict[str, float]:
    """Concurrent model calls finish in any order; report the steps by model id."""
    order = [FEATURE_STORE_STEP] + [model_step(i) for i in range(num_models)]
    return {k: steps[k] for k in order if k in steps}
