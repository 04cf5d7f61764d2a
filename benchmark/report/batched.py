"""Batching against async, as the report says it under the headline (doc/batching.md): what the batching
handler's throughput gain at the breaking point cost it at one user."""

from __future__ import annotations

from benchmark.report.blocks import Block, Paragraph
from benchmark.report.format import number
from benchmark.summary import BatchedVsAsync, Repeated

BATCHED_TITLE = "Batching against async"


def batched_blocks(comparison: BatchedVsAsync | None) -> list[Block]:
    """The sentence, or nothing when the run did not measure both handlers."""
    text = batched_sentence(comparison)
    return [Paragraph(f"{BATCHED_TITLE}: {text}")] if text else []


def batched_sentence(comparison: BatchedVsAsync | None) -> str | None:
    """E.g. "batching served 1.8× async's throughput at the breaking point (...), for +5.2 ms at one user
    (...)."; None without a throughput or a 1-user measurement of both."""
    if comparison is None:
        return None
    gain, cost = _gain(comparison), _cost(comparison)
    if gain is None and cost is None:
        return None
    if gain is None:
        return f"the throughput of the two was not measured; at one user batching cost {cost}."
    if cost is None:
        return f"batching served {gain}; its latency at one user was not measured."
    return f"batching served {gain}, for {cost}."


def _gain(c: BatchedVsAsync) -> str | None:
    ratio = c.sustained_rps_ratio if c.sustained_rps_ratio is not None else c.ramp_peak_ratio
    if ratio is None:
        return None
    details = []
    if c.sustained_rps_ratio is not None:
        users = (
            f", at {c.batched_breaking_users} and {c.async_breaking_users} users"
            if c.batched_breaking_users is not None and c.async_breaking_users is not None
            else ""
        )
        details.append(
            f"maximum sustained throughputs{users}{_range(c.sustained_rps_ratio_range, '.2f', '×')}"
        )
        if c.ramp_peak_ratio is not None:
            details.append(f"the ramps' highest: {c.ramp_peak_ratio:.2f}×")
        where = "at the breaking point"
    else:
        details.append("the ramps' highest throughputs: the sustained phase did not measure both")
        where = "in the ramp"
    return f"{ratio:.2f}× async's throughput {where} ({'; '.join(details)})"


def _cost(c: BatchedVsAsync) -> str | None:
    if c.one_user_p50_cost_ms is None:
        return None
    text = f"{number(c.one_user_p50_cost_ms, '+.1f', 'ms')} at one user (p50, batched − async"
    text += _range(c.one_user_p50_cost_range_ms, "+.1f", " ms") + ")"
    if c.ideal_p50_cost_ms is not None:
        wait = (
            f"BATCH_MAX_WAIT_MS = {c.batch_max_wait_ms:g} ms"
            if c.batch_max_wait_ms is not None
            else "the wait"
        )
        text += (
            f"; the ideals predict {number(c.ideal_p50_cost_ms, '+.1f', 'ms')}: {wait} for a batch that "
            "never fills, plus one item's cost in the batch call"
        )
    return text


def _range(values: Repeated | None, spec: str, unit: str) -> str:
    """ "; per repetition 1.70×–1.92×, n=3" for a spread of at least two repetition pairs."""
    if values is None or values.n < 2 or values.min is None or values.max is None:
        return ""
    return f"; per repetition {values.min:{spec}}{unit} to {values.max:{spec}}{unit}, n={values.n}"
