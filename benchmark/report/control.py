"""The control's section: the async handler's throughput as a ratio of the minimal control's and its p50
at one user as a difference, against the targets, in computed sentences, with one row per repetition."""

from __future__ import annotations

from benchmark.report.blocks import Block, Heading, Paragraph, Table
from benchmark.report.format import DASH, ms, number, rps
from benchmark.summary import Control

CONTROL_TITLE = "The async handler against a minimal control"


def what_it_is(control: Control) -> str:
    tool = "wrk" if control.tool == "wrk" else "the open-loop generator as a closed loop"
    return (
        "The control is a minimal async handler (api_scoring_minimal): the same API, server (uvicorn, the "
        "same event loop and HTTP parser) and clients (one aiohttp session, redis.asyncio, the model calls "
        "gathered) as the product's async handler, without anything else — no validation, metrics, "
        "Server-Timing, profiler hook or slow-client guard. Both ran on the same stack, interleaved (the "
        f"order swapped every repetition): {control.users} connections in a closed loop for "
        f"{number(control.duration_s, 'g', 's')} ({tool}), then {control.requests} sequential requests of "
        "one user. What separates them is what the product's features cost per request."
    )


def ratio_sentence(control: Control) -> str:
    if control.ratio_median is None:
        return "The throughput of the two handlers was not measured (no closed-loop result)."
    n = sum(1 for r in control.reps if r.ratio is not None)
    verdict = _verdict(control.meets_ratio)
    spread = (
        f" (repetitions: {control.ratio_min:.2f}–{control.ratio_max:.2f}×, n={n})"
        if n > 1 and control.ratio_min is not None and control.ratio_max is not None
        else f" (n={n})"
    )
    return (
        f"At {control.users} connections the async handler served {control.ratio_median:.2f}× the control's "
        f"throughput, median of the repetitions{spread}: {verdict} the target of at least "
        f"{control.ratio_target:.1f}×."
    )


def p50_sentence(control: Control) -> str:
    if control.p50_diff_ms is None:
        return "The p50 at one user of the two handlers was not measured."
    diff = control.p50_diff_ms
    word = "above" if diff >= 0 else "below"
    spread = ""
    if control.p50_diff_min_ms is not None and control.p50_diff_max_ms is not None and len(control.reps) > 1:
        spread = (
            f" (per repetition {control.p50_diff_min_ms:+.2f} to {control.p50_diff_max_ms:+.2f} ms; the "
            "model calls' random latency moves a p50 of a few hundred requests by a few tenths of a "
            "millisecond)"
        )
    return (
        f"At one user the async handler's p50 was {abs(diff):.2f} ms {word} the control's, over every "
        f"repetition's sequential requests pooled{spread}: {_verdict(control.meets_p50)} the target of at "
        f"most {control.p50_target_ms:g} ms above."
    )


def cpu_sentence(control: Control) -> str | None:
    """The server's CPU per request under the closed loop, which a busy machine moves less than req/s."""
    product, reference = control.product_cpu_ms, control.control_cpu_ms
    if product is None or reference is None:
        return None
    extra_us = (product - reference) * 1000.0
    return (
        f"Under that load the async handler's server used {product:.3f} ms of CPU per request against the "
        f"control's {reference:.3f} ms (medians of the repetitions): {abs(extra_us):.0f} µs "
        f"{'more' if extra_us >= 0 else 'less'}, what its features cost per request."
    )


def _verdict(meets: bool | None) -> str:
    return "it meets" if meets else "it misses" if meets is False else "undecided against"


def rep_table(control: Control) -> Table:
    rows = [
        [
            str(r.rep),
            r.first or DASH,
            rps(r.product_rps),
            rps(r.control_rps),
            number(r.ratio, ".2f", "×"),
            ms(r.product_p50_ms),
            ms(r.control_p50_ms),
            number(r.p50_diff_ms, "+.2f", "ms"),
            number(r.product_cpu_ms, ".3f", "ms"),
            number(r.control_cpu_ms, ".3f", "ms"),
            f"{r.product_errors if r.product_errors is not None else DASH} / "
            f"{r.control_errors if r.control_errors is not None else DASH}",
        ]
        for r in control.reps
    ]
    header = [
        "rep",
        "first",
        "async",
        "control",
        "ratio",
        "async p50",
        "control p50",
        "p50 diff",
        "async CPU/req",
        "control CPU/req",
        "errors",
    ]
    return Table(header, rows, text_columns=2)


def control_blocks(control: Control | None) -> list[Block]:
    if control is None:
        return []
    blocks: list[Block] = [Heading(2, CONTROL_TITLE), Paragraph(what_it_is(control))]
    blocks.append(Paragraph(ratio_sentence(control)))
    cpu = cpu_sentence(control)
    if cpu:
        blocks.append(Paragraph(cpu))
    blocks.append(Paragraph(p50_sentence(control)))
    if control.reps:
        blocks.append(rep_table(control))
    blocks += [Paragraph(f"⚠ {problem}") for problem in control.problems]
    return blocks
