"""The queue's sections: its own numbers by load phase (end-to-end latency, depth, worker CPU) and the
burst experiment."""

from __future__ import annotations

from pathlib import Path

from benchmark.report.blocks import Block, Heading, Image, Paragraph, Table
from benchmark.report.format import DASH, ms, number, seconds, times
from benchmark.report.plot_captions import PLOT_CAPTIONS
from benchmark.summary import ArchitectureSummary, Burst, BurstRun, QueuePhase

BURST_TITLE = "Burst: many requests at once (seed 000)"


def queue_blocks(queue: ArchitectureSummary | None, plot_paths: dict[str, Path]) -> list[Block]:
    """The queue's own numbers by load phase: end-to-end latency and throughput, depth, worker CPU."""
    if queue is None:
        return []
    blocks: list[Block] = [Heading(2, "The queue: end-to-end latency, depth and worker CPU")]
    phases = queue.queue.phases if queue.queue else {}
    if not phases:
        return blocks + [Paragraph("No load phase of the queue left files: nothing to show.")]
    header = [
        "phase",
        "tasks",
        "end-to-end p50",
        "end-to-end p95",
        "completed/s",
        "depth max",
        "depth mean",
        "worker CPU mean",
        "worker CPU max",
        "worker CPU per task",
        "submit p50",
        "polls per task",
    ]
    rows = [_queue_row(phase, data, queue) for phase, data in phases.items()]
    blocks += [Table(header, rows), *[Paragraph(text) for text in queue_sentences(queue)]]
    if "queue_depth" in plot_paths:
        blocks.append(Image(plot_paths["queue_depth"], PLOT_CAPTIONS["queue_depth"]))
    return blocks


def _queue_latency(queue: ArchitectureSummary, phase: str) -> tuple[float | None, float | None, float | None]:
    """End-to-end p50, p95 and completed tasks/s of a phase (the ramp: its busiest step)."""
    if phase == "ramp":
        steps = queue.ramp.steps if queue.ramp else []
        top = max((s for s in steps if s.rps is not None), key=lambda s: s.rps or 0.0, default=None)
        return (top.p50_ms, top.p95_ms, top.rps) if top else (None, None, None)
    section = {"one_user": queue.one_user, "sustained": queue.sustained, "stress": queue.stress}.get(phase)
    return (section.p50_ms, section.p95_ms, section.rps) if section else (None, None, None)


def _queue_row(phase: str, data: QueuePhase, queue: ArchitectureSummary) -> list[str]:
    p50, p95, rate = _queue_latency(queue, phase)
    label = "ramp (busiest step)" if phase == "ramp" else phase.replace("_", " ")
    return [
        label,
        number(data.tasks, ",.0f"),
        ms(p50),
        ms(p95),
        number(rate, ".1f", "/s"),
        number(data.depth_max, ".0f"),
        number(data.depth_mean, ".1f"),
        number(data.worker_cpu_mean_percent, ".0f", "%"),
        number(data.worker_cpu_max_percent, ".0f", "%"),
        number(data.worker_cpu_ms_per_task, ".2f", "ms"),
        ms(data.submit.p50_ms),
        number(data.polls_per_task, ".2f"),
    ]


def queue_sentences(queue: ArchitectureSummary) -> list[str]:
    phases = queue.queue.phases if queue.queue else {}
    sentences = []
    one_user, sustained = queue.one_user, phases.get("sustained")
    if one_user is not None and one_user.p50_ms is not None:
        entries = phases.get("one_user")
        submit = entries.submit.p50_ms if entries else None
        polls = entries.polls_per_task if entries else None
        how = (
            f"the submit waited for the result (?wait_ms=) and answered with it ({number(polls, '.2f')} "
            "polls per task)"
            if polls is not None and polls < 0.5
            else f"the submit itself answered in {ms(submit)} (p50), then the client polled"
        )
        sentences.append(
            f"At one user a task took {ms(one_user.p50_ms)} from submit to result (p50), "
            f"{number(one_user.overhead_p50_ms, '+.1f', 'ms')} over the ideal of its model calls; {how}."
        )
    if sustained is not None:
        load = queue.sustained
        sentences.append(
            f"Under sustained load ({load.users if load else None} users) the queue completed "
            f"{number(load.rps if load else None, '.1f', 'tasks/s')}; up to "
            f"{number(sustained.depth_max, '.0f')} tasks waited in the broker (mean "
            f"{number(sustained.depth_mean, '.1f')}), and the worker used "
            f"{number(sustained.worker_cpu_mean_percent, '.0f')}% of a core on average "
            f"({number(sustained.worker_cpu_ms_per_task, '.2f', 'ms')} of CPU per task)."
        )
    deepest = max(phases.items(), key=lambda item: item[1].depth_max or 0, default=None)
    if deepest and (deepest[1].depth_max or 0) > 0:
        sentences.append(
            f"The deepest queue: {deepest[1].depth_max:.0f} waiting tasks, in the "
            f"{deepest[0].replace('_', ' ')} phase."
        )
    elif phases:
        sentences.append("No task ever waited in the broker when it was sampled: the worker kept up.")
    return sentences


# --------------------------------------------------------------------------- burst


def burst_blocks(
    burst: Burst | None, experiments: list[str] | None, plot_paths: dict[str, Path]
) -> list[Block]:
    if burst is None:
        if experiments is not None and "burst" in experiments:
            note = "⚠ The burst experiment left no files (burst/runs.json)."
            return [Heading(2, BURST_TITLE), Paragraph(note)]
        return []
    runs = sorted(main_runs(burst), key=_burst_order)
    others = sorted(
        (run for run in burst.runs if run not in runs), key=lambda run: (run.tasks, *_burst_order(run))
    )
    blocks: list[Block] = [Heading(2, BURST_TITLE), Paragraph(_burst_intro(burst))]
    if runs:
        header = [
            "architecture",
            "worker concurrency",
            "completed",
            "failures",
            "all accepted after",
            "first result",
            "last result",
            "p50",
            "p95",
            "results/s",
            "depth max",
            "worker CPU per task",
        ]
        blocks.append(Table(header, [_burst_row(run) for run in runs], text_columns=2))
        if others:
            blocks.append(Paragraph("The other burst sizes (BENCH_BURST_SIZES):"))
            rows = [[str(run.tasks), *_burst_row(run)] for run in others]
            blocks.append(Table(["tasks at once", *header], rows, text_columns=3))
        blocks += [Paragraph(text) for text in burst_sentences(burst)]
    if "burst" in plot_paths:
        blocks.append(Image(plot_paths["burst"], PLOT_CAPTIONS["burst"]))
    return blocks


def _burst_order(run: BurstRun) -> tuple[int, int]:
    """The queue's bursts first, by worker concurrency; then the others as measured (a stable sort)."""
    return (0, run.concurrency or 0) if run.architecture == "queue" else (1, 0)


def _burst_intro(burst: Burst) -> str:
    return (
        f"{burst.tasks} requests sent at once, one connection each. The queue takes them as tasks "
        "(a 202 each) and the client then long-polls every task until its result is there; the sync "
        "and async handlers must answer all of them on the open connections. Times are from the moment "
        "the burst started."
    )


def _burst_row(run: BurstRun) -> list[str]:
    return [
        str(run.architecture),
        DASH if run.concurrency is None else str(run.concurrency),
        f"{run.completed} of {run.tasks}",
        str(run.failures),
        seconds(run.last_accepted_s),
        seconds(run.first_done_s),
        seconds(run.last_done_s),
        ms(run.p50_ms),
        ms(run.p95_ms),
        number(run.throughput_per_s, ".0f", "/s"),
        number(run.depth_max, ".0f"),
        number(run.worker_cpu_ms_per_task, ".2f", "ms"),
    ]


def main_runs(burst: Burst) -> list[BurstRun]:
    """The runs of the main burst size (BENCH_BURST_TASKS); every run when it is unknown."""
    return [run for run in burst.runs if burst.tasks is None or run.tasks == burst.tasks]


def burst_sentences(burst: Burst) -> list[str]:
    """The main size's drain, failures and comparisons, then the verdict of every size measured."""
    main = main_runs(burst)
    queue = [run for run in main if run.architecture == "queue"]
    others = [run for run in main if run.architecture != "queue"]
    drained = [(run, run.drain_s) for run in queue if run.drain_s is not None]
    sentences = _drain_sentences(burst, drained)
    failed = [run for run in queue if run.failures]
    if failed:
        sentences.append(
            "Tasks that failed or were not done in time: "
            + "; ".join(f"{run.failures} at concurrency {run.concurrency}" for run in failed)
            + "."
        )
    for run in others:
        verdict = "all answered" if not run.failures else f"{run.failures} failed"
        sentences.append(
            f"{run.architecture}: the same {run.tasks} requests at once — "
            f"{verdict}, the last answer after {seconds(run.last_done_s)} "
            f"(p50 {ms(run.p50_ms)})."
        )
    if drained and others:
        best, best_drain = min(drained, key=lambda pair: pair[1])
        for run in others:
            if run.last_done_s and not run.failures:
                ratio = run.last_done_s / best_drain
                word = "sooner" if ratio > 1 else "later"
                sentences.append(
                    f"The best queue ({best.concurrency} slots) had every result "
                    f"{times(max(ratio, 1 / ratio))} {word} than {run.architecture} answered "
                    f"its last request."
                )
    sentences += verdict_sentences(burst)
    return sentences or ["The burst runs hold no results."]


def _drain_sentences(burst: Burst, drained: list[tuple[BurstRun, float]]) -> list[str]:
    """How fast the queue drained the burst at each worker concurrency, and when it had accepted it all."""
    if not drained:
        return []
    parts = [
        f"{drain:.2f} s with {run.concurrency} worker slots (depth up to {number(run.depth_max, '.0f')})"
        for run, drain in drained
    ]
    sentences = [f"The queue drained all {burst.tasks} tasks in " + "; ".join(parts) + "."]
    fastest = min(drained, key=lambda pair: pair[1])
    slowest = max(drained, key=lambda pair: pair[1])
    if fastest[0] is not slowest[0]:
        sentences.append(
            f"From {slowest[0].concurrency} to {fastest[0].concurrency} slots the drain got "
            f"{times(slowest[1] / fastest[1])} faster."
        )
    for run, drain in drained:
        if run.last_accepted_s is not None:
            sentences.append(
                f"With {run.concurrency} slots every task was accepted (202) within "
                f"{seconds(run.last_accepted_s)}, {seconds(drain - run.last_accepted_s)} "
                "before the last result was there: until then the clients are free to do something else."
            )
    return sentences


def _answered(run: BurstRun) -> float | None:
    """When a direct handler had answered every request of its burst (None: some failed)."""
    return run.last_done_s if not run.failures and run.last_done_s else None


def verdict_sentences(burst: Burst) -> list[str]:
    """When the queue beats the direct handlers: at which burst size and worker concurrency its last result
    was there before a handler's last answer (from the measured runs), per burst size measured."""
    sizes = sorted({run.tasks for run in burst.runs if run.tasks})
    sentences = []
    for size in sizes:
        runs = [run for run in burst.runs if run.tasks == size]
        tried = sorted(
            (run for run in runs if run.architecture == "queue"), key=lambda run: run.concurrency or 0
        )
        direct = [run for run in runs if run.architecture != "queue"]
        if not tried or not direct:
            continue
        queue = [run for run in tried if run.drain_s is not None]
        handlers = [(run, done) for run in direct if (done := _answered(run))]
        if queue and handlers:
            sentences.append(_verdict(size, queue, handlers))
        else:
            sentences.append(_incomplete_verdict(size, tried, queue, direct, handlers))
    return sentences


def _incomplete_verdict(
    size: int,
    tried: list[BurstRun],
    queue: list[BurstRun],
    direct: list[BurstRun],
    handlers: list[tuple[BurstRun, float]],
) -> str:
    """The verdict when the queue or every direct handler did not answer every request of the burst."""
    failed = ", ".join(f"{run.failures} with {run.concurrency} slots" for run in tried if run.drain_s is None)
    lost = ", ".join(f"{run.architecture} {run.failures}" for run in direct if run.failures)
    if handlers:  # the queue never had every result
        answered = "; ".join(f"{run.architecture} in {seconds(done)}" for run, done in handlers)
        return (
            f"At a burst of {size} tasks the queue never beats the direct handlers on this machine: at no "
            f"worker concurrency measured did it have every result (tasks failed: {failed}), while "
            f"{answered} answered all {size}."
        )
    if queue:  # every direct handler failed some requests
        best = min(queue, key=lambda run: run.drain_s or 0.0)
        slots = _slots([run.concurrency or 0 for run in queue])
        return (
            f"At a burst of {size} tasks the queue beats the direct handlers on this machine with {slots} "
            f"worker slots: it had every result (the best after {seconds(best.drain_s)}, "
            f"{best.concurrency} slots) while they failed requests ({lost})."
        )
    return (
        f"At a burst of {size} tasks neither the queue (tasks failed: {failed}) nor the direct handlers "
        f"({lost}) answered every request on this machine."
    )


def _verdict(size: int, queue: list[BurstRun], handlers: list[tuple[BurstRun, float]]) -> str:
    best = min(queue, key=lambda run: run.drain_s or 0.0)
    against = "; ".join(
        f"{run.architecture} {seconds(done)}, {number(run.throughput_per_s, '.0f', 'req/s')}"
        for run, done in handlers
    )
    beaten: dict[str, list[int]] = {
        str(run.architecture): [q.concurrency or 0 for q in queue if (q.drain_s or 0.0) < done]
        for run, done in handlers
    }
    both = [c for c in (q.concurrency or 0 for q in queue) if all(c in slots for slots in beaten.values())]
    measured = (
        f"(its best: {best.concurrency} worker slots, every result after {seconds(best.drain_s)}, "
        f"{number(best.throughput_per_s, '.0f', 'tasks/s')}; the last answer of {against})"
    )
    names = " and ".join(str(run.architecture) for run, _ in handlers)
    if both:
        return (
            f"At a burst of {size} tasks the queue beats the direct handlers ({names}) on this machine with "
            f"{_slots(both)} worker slots: it has every result before they answer their last request "
            f"{measured}."
        )
    partly = [f"{arch} with {_slots(slots)} worker slots" for arch, slots in beaten.items() if slots]
    if partly:
        return (
            f"At a burst of {size} tasks the queue beats only {'; '.join(partly)} on this machine, never "
            f"both direct handlers {measured}."
        )
    return (
        f"At a burst of {size} tasks the queue never beats the direct handlers on this machine at any "
        f"worker concurrency measured ({', '.join(str(q.concurrency) for q in queue)}) {measured}."
    )


def _slots(concurrencies: list[int]) -> str:
    return (
        ", ".join(str(c) for c in concurrencies[:-1])
        + (" or " if len(concurrencies) > 1 else "")
        + str(concurrencies[-1])
    )
