"""The "differs" lines of the attribution's studies (the waterfall's steps and the gap at each, the fan-out,
the long tail, the queue's waterfall): one bullet per comparison, flagged when a study's sides differ in more
than its factor (benchmark/analysis/study_differs.py computes them from the settings each side recorded).
Comparisons whose line is the same are said once, with every side they hold for."""

from __future__ import annotations

from collections.abc import Iterable

from benchmark.report.blocks import Block, Paragraph
from benchmark.report.differs import differs_bullets, differs_text
from benchmark.summary import Attribution, Differs, QueueWaterfall, StudyEntry, WaterfallStep

WATERFALL_INTRO = (
    "What differs under each comparison of the waterfall (from the settings each step recorded): each step "
    "against the step before, per architecture, then sync against async at each step (the gap):"
)
FANOUT_INTRO = "What differs in the fan-out (from the settings each configuration recorded):"
TAIL_INTRO = "What differs in the long-tail study:"
QUEUE_INTRO = "What differs between each step of the queue's waterfall and the step before:"


def _and(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def grouped(pairs: Iterable[tuple[str, Differs | None]]) -> list[str]:
    """ "name and name — differs: …" for each distinct text, in the order first seen (absent ones left
    out)."""
    names: dict[str, list[str]] = {}
    for name, differs in pairs:
        text = differs_text(differs)
        if text:
            names.setdefault(text, []).append(name)
    return [f"{_and(found)} — {text}" for text, found in names.items()]


def _by_step(steps: Iterable[WaterfallStep]) -> list[str]:
    """One bullet per step: "step 1 (+ HTTP client lifetime): sync and async — differs: …" (each
    architecture's text apart when they differ)."""
    by_step: dict[int, list[WaterfallStep]] = {}
    for step in steps:
        by_step.setdefault(step.step, []).append(step)
    items = []
    for number, group in by_step.items():
        parts = grouped((step.architecture, step.differs) for step in group)
        if parts:
            factor = f" (+ {group[0].factor})" if group[0].factor else ""
            items.append(f"step {number}{factor}: " + "; ".join(parts))
    return items


OLDER_SUMMARY = (
    "This summary predates the computed diffs of the studies: rebuilding the report from the run's raw "
    "files (make report) adds what differs under each comparison."
)


def waterfall_differs_blocks(attribution: Attribution) -> list[Block]:
    if attribution.steps and all(step.differs is None for step in attribution.steps):
        return [Paragraph(OLDER_SUMMARY)]
    items = _by_step(attribution.steps)
    gap = attribution.gap
    if gap is not None:
        gaps: list[tuple[str, Differs | None]] = [
            ("seed-faithful", gap.seed_faithful.differs if gap.seed_faithful else None)
        ]
        gaps += [(f"step {factor.step}", factor.differs) for factor in gap.factors]
        items += [f"the gap (sync vs async) at {text}" for text in grouped(gaps)]
    return differs_bullets(items, WATERFALL_INTRO)


def fanout_differs_blocks(entries: list[StudyEntry]) -> list[Block]:
    """Sync against each other architecture at each number of models, then each number against the one
    before (the study's own factor)."""
    against_sync: dict[str, list[tuple[str, Differs | None]]] = {}
    for entry in entries:
        if entry.architecture != "sync":
            against_sync.setdefault(entry.architecture, []).append((_models(entry), entry.differs))
    items = [f"sync vs {arch} at {text}" for arch, pairs in against_sync.items() for text in grouped(pairs)]
    previous: dict[int, list[tuple[str, Differs | None]]] = {}
    for entry in entries:
        previous.setdefault(entry.num_models or 0, []).append((entry.architecture, entry.differs_previous))
    items += [
        f"{_models_of(models)} against the number before, {text}"
        for models, pairs in previous.items()
        for text in grouped(pairs)
    ]
    return differs_bullets(items, FANOUT_INTRO)


def _models(entry: StudyEntry) -> str:
    return _models_of(entry.num_models) if entry.num_models else entry.label or f"step {entry.step}"


def _models_of(count: int | None) -> str:
    return f"{count} model{'' if count == 1 else 's'}"


def tail_differs_blocks(tail: dict[str, StudyEntry] | None) -> list[Block]:
    entries = list((tail or {}).values())
    return differs_bullets(
        grouped((f"sync vs {entry.architecture}", entry.differs) for entry in entries), TAIL_INTRO
    )


def queue_differs_blocks(queue: QueueWaterfall | None) -> list[Block]:
    if queue is None:
        return []
    steps = list(queue.steps) + ([queue.engine] if queue.engine is not None else [])
    return differs_bullets(_by_step(steps), QUEUE_INTRO)
