"""The queue's waterfall in the attribution section: from the seeds' Celery (its defaults, polled plainly)
to the tuned queue, one factor at a time, and which factor explains most of the queue's gap to its ideal."""

from __future__ import annotations

from pathlib import Path

from benchmark.report.attribution_differs import queue_differs_blocks
from benchmark.report.blocks import Block, Heading, Image, Paragraph, Table
from benchmark.report.format import DASH, ms, number, whole_percent
from benchmark.report.plot_captions import PLOT_CAPTIONS
from benchmark.summary import Level, QueueFactor, QueueWaterfall, WaterfallStep

QUEUE_WATERFALL_TITLE = "The queue's waterfall: from the seeds' Celery to the tuned queue"
TASKS_PER_S = "tasks/s"


def queue_waterfall_blocks(
    queue: QueueWaterfall | None, users: int | None, plot_paths: dict[str, Path]
) -> list[Block]:
    """The queue's waterfall: intro, table, what it says, plot; nothing when it did not run."""
    if queue is None:
        return []
    blocks: list[Block] = [Heading(3, QUEUE_WATERFALL_TITLE), Paragraph(_intro(queue, users))]
    blocks += [queue_waterfall_table(queue), *[Paragraph(text) for text in queue_sentences(queue, users)]]
    blocks += queue_differs_blocks(queue)
    if "queue_waterfall" in plot_paths:
        blocks.append(Image(plot_paths["queue_waterfall"], PLOT_CAPTIONS["queue_waterfall"]))
    return blocks


def _intro(queue: QueueWaterfall, users: int | None) -> str:
    reps = max((step.reps for step in queue.steps), default=queue.baseline.reps if queue.baseline else 0)
    return (
        "The same treatment for the queue alone: from the queue of seeds 001 and 004 (Celery's defaults: a "
        "prefork pool of one process per core, 4 tasks prefetched per process, early acks, no STARTED state, "
        "results kept a day; the model calls one after another; its client polls the status plainly, "
        "asking again as soon as it has an answer) to the tuned queue, switching one factor at a time, "
        f"cumulatively. Each step was measured {reps} time(s) through the queue's client: p50 from submit to "
        f"result at one user and the completed tasks/s of {users} closed-loop users. Δ and † as above. The "
        "gap to the ideal is the seed-faithful p50 minus the ideal p50 of the tuned queue's model calls "
        "(nothing but the calls); a factor's share is the part of that gap it closed (negative: it widened "
        "it), and the part of the throughput's change from seed-faithful to tuned it made. Server CPU per "
        "task (the queue's API, worker, model API and Redis) and the client's polls per task are of the "
        "closed-loop load."
    )


def _percent(ratio: float | None) -> str:
    """A share in whole percent, without a minus sign on a share that rounds to zero."""
    text = whole_percent(ratio)
    return "0%" if text == "-0%" else text


def _signed(value: float | None, unit: str) -> str:
    """A change with its sign (+0.0 for one that rounds to zero)."""
    if value is None:
        return number(None)
    return number(value if round(value, 1) else 0.0, "+.1f", unit)


def _delta(step: WaterfallStep, latency: bool) -> str:
    if latency:
        text, noise = _signed(step.delta_p50_ms, "ms"), step.within_noise.p50_ms
    else:
        text, noise = _signed(step.delta_rps, TASKS_PER_S), step.within_noise.max_rps
    return text + " †" if noise else text


def _step_cells(step: WaterfallStep, label: str) -> list[str]:
    """A step's row up to its shares: what it switched, its p50, tasks/s, CPU per task and their changes."""
    return [
        label,
        f"{step.from_} → {step.to}",
        ms(step.p50_ms),
        _delta(step, latency=True),
        number(step.max_rps, ".1f", TASKS_PER_S),
        _delta(step, latency=False),
        number(step.cpu_ms_per_request, ".2f", "ms"),
        number(step.polls_per_task, ".1f"),
    ]


def _level_row(label: str, level: Level | None) -> list[str]:
    return [
        f"{label} (level)",
        "",
        ms(level.p50_ms if level else None),
        "",
        number(level.max_rps if level else None, ".1f", TASKS_PER_S),
        "",
        number(level.cpu_ms_per_request if level else None, ".2f", "ms"),
        number(level.polls_per_task if level else None, ".1f"),
        "",
        "",
    ]


def queue_waterfall_table(queue: QueueWaterfall) -> Table:
    shares = {factor.step: factor for factor in queue.factors}
    rows = [_level_row("seed-faithful", queue.baseline)]
    for step in queue.steps:
        factor = shares.get(step.step)
        shares_cells = [
            _percent(factor.share_of_ideal_gap if factor else None),
            _percent(factor.share_rps if factor else None),
        ]
        rows.append(_step_cells(step, step.factor) + shares_cells)
    rows.append(_level_row("tuned", queue.tuned))
    if (engine := queue.engine) is not None:  # beyond tuned: against it, no share
        rows.append(_step_cells(engine, f"{engine.factor} (beyond tuned)") + ["", ""])
    rows.append(["ideal (the model calls alone)", "", ms(queue.ideal_p50_ms), "", "", "", "", "", "", ""])
    header = [
        "factor",
        "from → to",
        "p50",
        "p50 Δ",
        TASKS_PER_S,
        f"{TASKS_PER_S} Δ",
        "server CPU per task",
        "polls per task",
        "share of the gap to the ideal",
        "share of the throughput's change",
    ]
    return Table(header, rows, text_columns=2)


def _named(factor: QueueFactor) -> str:
    text = f"{factor.factor} ({factor.from_} → {factor.to})"
    return text[:1].upper() + text[1:]  # it starts a sentence


def queue_sentences(queue: QueueWaterfall, users: int | None) -> list[str]:
    """What the queue's waterfall says: where it started against its ideal, which factor closed most of
    that gap, what is left, and which factor moved the throughput most."""
    seed, tuned = queue.baseline, queue.tuned
    if seed is None or seed.p50_ms is None:
        return ["The queue's seed-faithful step was not measured: no gap to attribute."]
    sentences = [_start_sentence(queue, users)]
    sentences += _latency_sentences(queue)
    if tuned is not None and tuned.p50_ms is not None and queue.ideal_p50_ms is not None:
        left = queue.ideal_gap_tuned_ms
        part = (
            f" ({whole_percent(left / queue.ideal_gap_seed_ms)} of the gap)"
            if left is not None and queue.ideal_gap_seed_ms and queue.ideal_gap_seed_ms > 0
            else ""
        )
        sentences.append(
            f"Tuned, the queue's p50 is {ms(tuned.p50_ms)}: {number(left, '+.1f', 'ms')} over its ideal"
            f"{part}, which no factor of the waterfall explains: the task's own path (submit, publish, "
            "reserve, store the result, wake the waiting request)."
        )
    sentences += _throughput_sentences(queue, users)
    if queue.engine is not None:
        sentences.append(engine_sentence(queue.engine, tuned))
    return sentences


def engine_sentence(engine: WaterfallStep, tuned: Level | None) -> str:
    """The tuned queue on taskiq against Celery (the step beyond tuned): how much of its cost is Celery's."""
    text = (
        f"Beyond the tuned queue, the same settings on {engine.to} instead of {engine.from_} "
        f"(QUEUE_ENGINE: the same API, result store and wake-up; its worker one asyncio process running the "
        f"async handler's scoring code): p50 at one user {ms(engine.p50_ms)} "
        f"({_delta(engine, latency=True)}), "
        f"{number(engine.max_rps, '.1f', TASKS_PER_S)} ({_delta(engine, latency=False)})"
    )
    before = tuned.cpu_ms_per_request if tuned is not None else None
    after = engine.cpu_ms_per_request
    if before and after is not None:
        text += f", {number(after, '.2f', 'ms')} of server CPU per task against {number(before, '.2f', 'ms')}"
        if after <= before:
            text += (
                f": {whole_percent((before - after) / before)} of the tuned queue's CPU per task is "
                f"{engine.from_}'s (its engine with the thread-pool scorer it runs)"
            )
        else:
            text += f": {engine.to} costs {whole_percent((after - before) / before)} more"
    return text + "."


def _start_sentence(queue: QueueWaterfall, users: int | None) -> str:
    seed = queue.baseline
    assert seed is not None
    text = (
        f"The seed-faithful queue took {ms(seed.p50_ms)} at one user (p50, submit to result) and completed "
        f"{number(seed.max_rps, '.1f', TASKS_PER_S)} at {users} users"
    )
    if queue.ideal_p50_ms is None:
        return text + "."
    text += (
        f"; that is {number(queue.ideal_gap_seed_ms, '.1f', 'ms')} above the ideal of the tuned queue "
        f"({ms(queue.ideal_p50_ms)}: {queue.ideal_description or 'its model calls'}"
    )
    if queue.seed_ideal_p50_ms is not None and round(queue.seed_ideal_p50_ms - queue.ideal_p50_ms, 1):
        text += f"; the seed's calls, one after another, ideally take {ms(queue.seed_ideal_p50_ms)}"
    return text + ")."


def _latency_sentences(queue: QueueWaterfall) -> list[str]:
    closing = [f for f in queue.factors if f.share_of_ideal_gap is not None and f.change_p50_ms is not None]
    if not closing:
        moved = [f for f in queue.factors if f.change_p50_ms is not None]
        if not moved or queue.ideal_gap_seed_ms is None:
            return []
        top = max(moved, key=lambda f: abs(f.change_p50_ms or 0.0))
        return [
            "The seed-faithful queue was no slower than its ideal: there is no gap to share; the largest "
            f"move was {_named(top)}'s {number(top.change_p50_ms, '+.1f', 'ms')}."
        ]
    top = max(closing, key=lambda f: f.share_of_ideal_gap or 0.0)
    share = top.share_of_ideal_gap or 0.0
    if share <= 0:
        return [
            "No factor brought the queue nearer its ideal at one user: each left its p50 as it was or worse."
        ]
    text = (
        f"{_named(top)} explains most of the queue's gap to its ideal: it cut the p50 at one user by "
        f"{ms(-(top.change_p50_ms or 0.0))}, {whole_percent(share)} of the gap"
    )
    text += " (more than all of it: other factors widened it again)." if share > 1 else "."
    others = [
        f"{f.factor} {_percent(f.share_of_ideal_gap)}" + (" †" if _noise(queue, f) else "")
        for f in closing
        if f is not top
    ]
    if others:
        noise = " († within the noise)" if any(_noise(queue, f) for f in closing if f is not top) else ""
        text += f" The others: {'; '.join(others)}{noise}."
    return [text]


def _noise(queue: QueueWaterfall, factor: QueueFactor) -> bool:
    step = next((s for s in queue.steps if s.step == factor.step), None)
    return bool(step and step.within_noise.p50_ms)


def _throughput_sentences(queue: QueueWaterfall, users: int | None) -> list[str]:
    seed, tuned = queue.baseline, queue.tuned
    moved = [f for f in queue.factors if f.change_rps is not None]
    if seed is None or tuned is None or seed.max_rps is None or tuned.max_rps is None or not moved:
        return []
    top = max(moved, key=lambda f: abs(f.change_rps or 0.0))
    text = (
        f"At {users} users its throughput went from {number(seed.max_rps, '.1f', TASKS_PER_S)} to "
        f"{number(tuned.max_rps, '.1f', TASKS_PER_S)}; {_named(top)[:1].lower() + _named(top)[1:]} moved it "
        f"most ({number(top.change_rps, '+.1f', TASKS_PER_S)}"
    )
    share = _percent(top.share_rps)
    text += f", {share} of the change)." if share != DASH else ")."
    return [text]
