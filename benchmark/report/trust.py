"""The sections that say how far the numbers can be trusted: the verification gate, the open loop, the
independent cross-check, and the machine's calibration."""

from __future__ import annotations

from pathlib import Path

from benchmark.calibration import drift_warning, speed_drift_percent
from benchmark.report.blocks import Block, Bullets, Heading, Image, Paragraph, Table
from benchmark.report.format import DASH, ms, number, rps, spread, whole_percent, yes_no
from benchmark.report.plot_captions import PLOT_CAPTIONS
from benchmark.summary import (
    ArchitectureSummary,
    Calibration,
    CrossCheck,
    Environment,
    OpenLoop,
    Repeated,
    Verification,
)

OPEN_LOOP_TITLE = "Open loop: latency against offered load"
OPEN_LOOP_INTRO = (
    "Requests sent on a schedule that does not wait for the answers ({arrivals} arrivals), at rates offered "
    "as fractions of each architecture's capacity in the ramp. Latency counts from each request's scheduled "
    "send time, so a stall shows in it for every request it delayed (a closed loop such as Locust stops "
    "sending while the server stalls, and its percentiles hide the stall: coordinated omission); the "
    "uncorrected p99 counts from the actual send. Send lag: how late the generator sent; a rate whose send "
    "lag p99 exceeded its limit was not held, and its numbers are the generator's as much as the stack's."
)
CROSSCHECK_TITLE = "Cross-check: Locust against an independent generator"


# --------------------------------------------------------------------------- verification


def verification_blocks(verification: Verification | None, verify_requests: int | None) -> list[Block]:
    """What the gate counted, per architecture, against what one scoring request must do."""
    heading = Heading(2, "Verification before any load")
    if verification is None:
        if verify_requests == 0:
            return [heading, Paragraph("The verification gate was switched off (BENCH_VERIFY_REQUESTS=0).")]
        return [
            heading,
            Paragraph("⚠ The verification gate did not run: nothing checked what a request does."),
        ]
    rows = [
        [
            row.architecture,
            str(row.requests),
            f"{row.valid_answers} of {row.requests}",
            f"{_count(row.feature_store_reads)} (expected {row.expected_reads})",
            f"{_count(row.model_calls)} (expected {row.expected_model_calls})",
            number(row.detail, ".6f"),
            "passed" if row.passed else "FAILED: " + "; ".join(row.problems),
        ]
        for row in verification.rows
    ]
    header = [
        "architecture",
        "requests",
        "valid answers",
        "feature-store reads",
        "model calls",
        "detail of the reference input",
        "verdict",
    ]
    intro = (
        "Before any load each architecture answered a fixed set of requests, counted by the services "
        "themselves: Redis's own count of GETs (INFO commandstats) and the model APIs' request counters "
        "(/metrics). One scoring request must read the feature store once and call every model once, and "
        "every architecture must give the same answer to the same input. The batching handler's model calls "
        "are batch calls (predict_batch), counted once per batch whatever it holds: the gate's requests go "
        "one after another, so each batch holds one item and goes when BATCH_MAX_WAIT_MS is up, one batch "
        "call per model per request; the others may make no batch call."
    )
    blocks: list[Block] = [heading, Paragraph(intro), Table(header, rows, text_columns=1)]
    if verification.problems:
        blocks += [Paragraph("⚠ Across architectures:"), Bullets(list(verification.problems))]
    verdict = (
        "Every check passed."
        if verification.passed
        else "⚠ The gate failed: the run stopped before any load."
    )
    return [*blocks, Paragraph(verdict)]


def _count(value: int | None) -> str:
    return DASH if value is None else str(value)


# --------------------------------------------------------------------------- open loop


def openloop_blocks(archs: dict[str, ArchitectureSummary], plot_paths: dict[str, Path]) -> list[Block]:
    sweeps = {arch: data.openloop for arch, data in archs.items() if data.openloop and data.openloop.rates}
    if not sweeps:
        return []
    arrivals = next(iter(sweeps.values())).rates[0].arrivals
    blocks: list[Block] = [Heading(2, OPEN_LOOP_TITLE), Paragraph(OPEN_LOOP_INTRO.format(arrivals=arrivals))]
    header = [
        "architecture",
        "offered",
        "achieved",
        "p50",
        "p90",
        "p99",
        "p99.9",
        "max",
        "p99 uncorrected",
        "send lag p99",
        "errors",
        "held",
        "generator CPU",
    ]
    rows = [
        [
            arch,
            rps(rate.offered_rps),
            rps(rate.achieved_rps),
            ms(rate.p50_ms),
            ms(rate.p90_ms),
            ms(rate.p99_ms),
            ms(rate.p999_ms),
            ms(rate.max_ms),
            ms(rate.uncorrected_p99_ms),
            ms(rate.send_lag_p99_ms),
            f"{rate.errors} of {rate.requests}",
            yes_no(rate.held),
            number(rate.generator_cpu_percent, ".0f", "%"),
        ]
        for arch, sweep in sweeps.items()
        for rate in sweep.rates
    ]
    blocks.append(Table(header, rows, text_columns=1))
    blocks += [Paragraph(text) for text in openloop_sentences(sweeps, archs)]
    if "openloop" in plot_paths:
        blocks.append(Image(plot_paths["openloop"], PLOT_CAPTIONS["openloop"]))
    return blocks


def openloop_sentences(sweeps: dict[str, OpenLoop], archs: dict[str, ArchitectureSummary]) -> list[str]:
    sentences = []
    for arch, sweep in sweeps.items():
        repeats = archs[arch].repeats
        at_limit = _spread_rps(
            repeats.openloop_rate_at_limit_rps if repeats else None, sweep.rate_at_limit_rps
        )
        limit = ms(sweep.p99_limit_ms)
        if sweep.max_rate_under_limit_rps is None:
            sentences.append(f"{arch}: no offered rate kept its p99 under {limit}.")
        else:
            sentences.append(
                f"{arch}: every offered rate up to {rps(sweep.max_rate_under_limit_rps)} kept its p99 under "
                f"{limit}; the p99 reaches the limit at {at_limit} (interpolated to the next rate)."
            )
        top = sweep.rates[-1]
        if (
            top.p99_ms is not None
            and top.uncorrected_p99_ms is not None
            and top.p99_ms > top.uncorrected_p99_ms
        ):
            sentences.append(
                f"{arch} at {rps(top.offered_rps)}: p99 {ms(top.p99_ms)} from the schedule against "
                f"{ms(top.uncorrected_p99_ms)} from the actual send — what a closed loop would not have seen."
            )
        late = [rps(rate.offered_rps) for rate in sweep.rates if rate.held is False]
        if late:
            sentences.append(
                f"⚠ {arch}: the generator could not hold {', '.join(late)}: those rates measure "
                "the generator as much as the stack."
            )
    return sentences


def _spread_rps(repeated: Repeated | None, single: float | None) -> str:
    if repeated is not None and repeated.n > 1:
        return spread(repeated.median, repeated.min, repeated.max, repeated.n, ".0f", "req/s")
    return rps(single)


# --------------------------------------------------------------------------- cross-check


def crosscheck_blocks(archs: dict[str, ArchitectureSummary]) -> list[Block]:
    checks = {arch: data.crosscheck for arch, data in archs.items() if data.crosscheck}
    if not checks:
        return []
    header = [
        "architecture",
        "users",
        "second generator",
        "Locust req/s",
        "its req/s",
        "Δ req/s",
        "Locust p50",
        "its p50",
        "Δ p50",
        "Locust CPU",
        "its CPU",
        "verdict",
    ]
    rows = [
        [
            arch,
            _count(c.users),
            c.tool,
            rps(c.locust_rps),
            rps(c.other_rps),
            whole_percent(c.rps_difference),
            ms(c.locust_p50_ms),
            ms(c.other_p50_ms),
            whole_percent(c.p50_difference),
            number(c.locust_cpu_percent, ".0f", "%"),
            number(c.other_cpu_percent, ".0f", "%"),
            _verdict(c),
        ]
        for arch, c in checks.items()
    ]
    intro = (
        "The sustained phase's throughput and p50 (Locust, at the breaking users) beside a second, "
        "independent measurement of the same stack at the same concurrency. A difference above 10% is "
        "flagged: with the generators' CPU beside it, it says whether the harness or the stack was measured."
    )
    blocks: list[Block] = [
        Heading(2, CROSSCHECK_TITLE),
        Paragraph(intro),
        Table(header, rows, text_columns=1),
    ]
    flagged = [arch for arch, c in checks.items() if c.disagree]
    if flagged:
        blocks.append(
            Paragraph(
                f"⚠ The generators disagree by more than 10% for {', '.join(flagged)}: treat "
                "those throughputs as bounded by the load generator, not only the stack."
            )
        )
    return blocks


def _verdict(check: CrossCheck) -> str:
    return DASH if check.disagree is None else "disagree" if check.disagree else "agree"


# --------------------------------------------------------------------------- the machine


def calibration_lines(environment: Environment | None) -> list[str]:
    """The Machine section's lines about the calibration."""
    calibration = environment.calibration if environment else None
    if calibration is None:
        return ["calibration: not measured in this run"]
    lines = [
        f"CPU speed: {number(calibration.cpu_benchmark_us, '.0f', 'µs')} for "
        f"{calibration.cpu_benchmark or DASH} (the unit of the calibrated CPU per request)",
        "timer wake-up: asyncio.sleep(45 ms) "
        f"{number(calibration.asyncio_sleep_overshoot_ms, '+.2f', 'ms')} late, time.sleep(45 ms) "
        f"{number(calibration.time_sleep_overshoot_ms, '+.2f', 'ms')} (medians)",
        f"before the run, over {number(calibration.check_s, '.1f', 's')}: CPU steal "
        f"{number(calibration.steal_percent, '.1f', '%')}, other processes "
        f"{number(calibration.other_cpu_percent, '.0f', '%')} of one core"
        + (f" (busiest: {calibration.busiest_other})" if calibration.busiest_other else ""),
    ]
    after = environment.calibration_after if environment else None
    if after is not None:
        drift = speed_drift_percent(calibration, after)
        lines.append(
            f"after the measurements: CPU speed {number(after.cpu_benchmark_us, '.0f', 'µs')} "
            f"({number(drift, '+.1f', '%')} against before), "
            f"CPU steal {number(after.steal_percent, '.1f', '%')}"
        )
    return lines + [f"⚠ {warning}" for warning in calibration_warnings(environment)]


def calibration_warnings(environment: Environment | None) -> list[str]:
    calibration: Calibration | None = environment.calibration if environment else None
    if calibration is None or environment is None:
        return []
    drift = drift_warning(calibration, environment.calibration_after)
    return list(calibration.warnings) + ([drift] if drift else [])
