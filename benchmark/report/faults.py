"""The faults section: per fault and architecture the errors, how fast they failed, the time to recover
and the queue's lost tasks, with the rules said in the report itself, and a timeline per fault."""

from __future__ import annotations

from pathlib import Path

from benchmark.faults.verdicts import (
    FAST_MARGIN_MS,
    RECOVERY_MAX_ERROR_RATIO,
    RECOVERY_P50_FACTOR,
    RECOVERY_WINDOW_S,
)
from benchmark.report.blocks import Block, Bullets, Heading, Image, Paragraph, Table
from benchmark.report.format import DASH, ms, number
from benchmark.summary import FaultRun, Faults

FAULTS_TITLE = "Faults under load"
FAULT_PLOT_PREFIX = "faults_"  # one plot per fault: faults_<fault>
TABLE_HEADER = [
    "fault",
    "architecture",
    "load",
    "errors",
    "error p99 (limit)",
    "recovery",
    "tasks lost (ran twice)",
]


TIMELINE_NOTE = (
    "The timelines, one per fault, a column per architecture, second by second from the fault's start as "
    "the answers came back: valid answers (line; dotted: the offered rate) and failed ones by outcome "
    "(bars); the failed share; the p95 wait from the scheduled send (dashed: the p50 before the fault). "
    "Shaded: the fault window; dashed line: the process back (restarted and ready); dotted green: recovered."
)


def plot_name(fault: str) -> str:
    return FAULT_PLOT_PREFIX + fault


def fault_names(faults: Faults | None) -> list[str]:
    """The faults that ran on at least one architecture, in the order they ran."""
    if faults is None:
        return []
    return list(dict.fromkeys(run.fault for run in faults.runs if not run.skipped and run.timeline))


def rules(faults: Faults) -> str:
    if faults.rate_rps:
        load = f"a steady open-loop load of {number(faults.rate_rps, '.0f', 'req/s')} (set)"
    else:
        load = f"a steady open-loop load at {number(faults.fraction, '.0%')} of its capacity"
    steady, window = number(faults.steady_s, ".0f", "s"), number(faults.window_s, ".0f", "s")
    recover = number(faults.recover_s, ".0f", "s")
    return (
        f"Each architecture ran on a stack of its own under {load} (Poisson arrivals that do not wait for "
        f"the answers, so a stall cannot hide), while one fault at a time hit it: {steady} of steady load, "
        f"the fault for {window} (a process killed and restarted at the end, or frozen with SIGSTOP and "
        f"continued), then {recover} to recover. A failure must be fast: the p99 of the failed answers' "
        f"response times must stay under the timeout that bounds that failure + {FAST_MARGIN_MS:.0f} ms "
        "(the queue: its refused submits; a task it accepted is followed to its end instead). Recovery: "
        f"from the end of the fault to the first {RECOVERY_WINDOW_S:g} s window whose answers hold under "
        f"{RECOVERY_MAX_ERROR_RATIO:.0%} errors and a p50 wait within {RECOVERY_P50_FACTOR:g}× the p50 "
        "before the fault (waits from the scheduled send time, so the backlog of a stall counts against "
        "it; a window without answers has not recovered). The queue's ledger: every task answered 202 must "
        "end as SUCCESS or an explicit FAILURE (lost = accepted − ended), and the worker counts each task's "
        "runs, so a task that ran twice is counted, not guessed."
    )


def redis_sentence(faults: Faults) -> str | None:
    if faults.redis_aof is None:
        return None
    if faults.redis_aof == "off":
        return (
            "The embedded Redis ran without its append-only file (REDIS_AOF=off): a restarted Redis came "
            "back empty and the supervisor seeded the features again; the queue's tasks, results and issued "
            "ids that lived in it were gone."
        )
    return (
        f"The embedded Redis ran with its append-only file (REDIS_AOF={faults.redis_aof}): a restarted Redis "
        "reloaded the features, the queue's waiting and unacknowledged tasks, its results and issued ids."
    )


def faults_blocks(faults: Faults | None, plot_paths: dict[str, Path]) -> list[Block]:
    if faults is None or not faults.runs:
        return []
    ran = [run for run in faults.runs if not run.skipped]
    blocks: list[Block] = [Heading(2, FAULTS_TITLE), Paragraph(rules(faults))]
    if (redis := redis_sentence(faults)) is not None:
        blocks.append(Paragraph(redis))
    if ran:
        blocks.append(Table(TABLE_HEADER, [table_row(run) for run in ran], text_columns=2))
        blocks += [Paragraph(text) for text in findings(ran)]
    skipped = [f"{run.fault} on {run.architecture}: {run.skipped}" for run in faults.runs if run.skipped]
    if skipped:
        blocks += [Paragraph("Skipped:"), Bullets(skipped)]
    problems = list(faults.problems) + [
        f"{run.fault} on {run.architecture}: {problem}" for run in ran for problem in run.problems
    ]
    if problems:
        blocks += [Paragraph("Problems:"), Bullets(problems)]
    images = [
        Image(plot_paths[plot_name(name)], f"Fault: {next(run.label for run in ran if run.fault == name)}.")
        for name in fault_names(faults)
        if plot_name(name) in plot_paths
    ]
    if images:
        blocks += [Paragraph(TIMELINE_NOTE), *images]
    return blocks


def table_row(run: FaultRun) -> list[str]:
    return [
        run.fault,
        run.architecture,
        number(run.offered_rps, ".0f", "req/s"),
        errors_cell(run),
        error_p99_cell(run),
        recovery_cell(run),
        ledger_cell(run),
    ]


def errors_cell(run: FaultRun) -> str:
    if not run.errors:
        return f"0 of {run.requests:,}"
    parts = ", ".join(f"{outcome}: {count:,}" for outcome, count in run.errors_by_outcome.items())
    return f"{run.errors:,} of {run.requests:,} ({parts})"


def error_p99_cell(run: FaultRun) -> str:
    if run.error_p99_ms is None:
        return f"{DASH} ({ms(run.error_limit_ms)})"
    mark = "" if run.fast_failure else " ⚠"
    return f"{ms(run.error_p99_ms)} ({ms(run.error_limit_ms)}){mark}"


def recovery_cell(run: FaultRun) -> str:
    if run.recovery_s is not None:
        return number(run.recovery_s, ".2f", "s")
    if run.recovered is False and run.duration_s is not None and run.fault_end_s is not None:
        return f"not within {run.duration_s - run.fault_end_s:.1f} s ⚠"
    return DASH


def ledger_cell(run: FaultRun) -> str:
    ledger = run.ledger
    if ledger is None:
        return DASH
    mark = " ⚠" if ledger.lost else ""
    twice = DASH if ledger.ran_twice is None else f"{ledger.ran_twice:,}"
    return f"{ledger.lost:,} of {ledger.accepted:,} ({twice}){mark}"


def findings(runs: list[FaultRun]) -> list[str]:
    """What the table's flags mean, run by run: slow failures, no recovery, lost tasks; else that all held."""
    sentences = []
    for run in runs:
        where = f"{run.fault} on {run.architecture}"
        if run.fast_failure is False:
            sentences.append(
                f"⚠ {where}: the failed answers took too long — p99 {ms(run.error_p99_ms)} against "
                f"{run.timeout_name} + {FAST_MARGIN_MS:.0f} ms = {ms(run.error_limit_ms)} "
                f"({run.timed_errors:,} failed answers)."
            )
        if run.recovered is False:
            sentences.append(
                f"⚠ {where}: no {RECOVERY_WINDOW_S:g} s window recovered before the load ended "
                f"(p50 before the fault {ms(run.baseline_p50_ms)})."
            )
        if run.ledger is not None and run.ledger.lost:
            led = run.ledger
            sentences.append(
                f"⚠ {where}: {led.lost:,} of {led.accepted:,} accepted tasks did not end ({led.unfinished:,} "
                f"still waiting or running, {led.unknown:,} unknown to the API, {led.unreachable:,} not "
                f"answered) after waiting {number(led.waited_s, '.0f', 's')}."
            )
    ledgers = [run for run in runs if run.ledger is not None]
    if ledgers and not any(run.ledger and run.ledger.lost for run in ledgers):
        accepted = sum(run.ledger.accepted for run in ledgers if run.ledger)
        twice = sum(run.ledger.ran_twice or 0 for run in ledgers if run.ledger)
        failed = sum(run.ledger.failed for run in ledgers if run.ledger)
        sentences.append(
            f"The queue lost no task: all {accepted:,} tasks it accepted under its faults ended "
            f"({failed:,} as an explicit FAILURE); {twice:,} ran twice (a message delivered again after its "
            "worker died or lost the broker before acknowledging it)."
        )
    if not sentences:
        sentences.append("Every failure was fast and every architecture recovered by itself.")
    return sentences
