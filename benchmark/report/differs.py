"""The "differs: …" line under every comparison the report makes, and the flag of a study whose sides differ
in more than its factor (benchmark/analysis/differs.py computes both from the recorded settings).

The headline's comparisons are not flagged: each architecture at its own tuned default is a legitimate
choice. Their diff is shown with a short explanation that points to the per-core figures. A summary.json
written before the diffs existed has none: the headline's are computed here from its recorded settings.
"""

from __future__ import annotations

from collections.abc import Iterable

from benchmark.analysis.comparison import headline_differs
from benchmark.analysis.differs import (
    ARCHITECTURE,
    QUEUE_WORKER,
    architecture_differs,
    beyond_architecture,
    comparison_differs,
)
from benchmark.analysis.raw import recorded_settings
from benchmark.report.blocks import Block, Bullets, Paragraph
from benchmark.summary import Burst, Differs, SettingDifference, Summary
from scoring_bench.core.settings import Settings

CONFOUNDED = "⚠ confounded"
HEADLINE_NOTE = (
    "Each architecture runs at its own tuned default, a legitimate comparison, but not on the same "
    "processes ({beyond}): read its absolute throughput beside req/s per core used and per scoring process "
    "(the headline's rows and the sustained section) to see whether it serves more on the same CPU."
)


def _items(settings: Iterable[SettingDifference]) -> str:
    return "; ".join(f"{diff.name} {diff.a} vs {diff.b}" for diff in settings)


def flag(differs: Differs | None) -> str | None:
    """ "⚠ confounded: model API processes 2 vs 1 — not the factor of this study (architecture)", or None."""
    if differs is None or not differs.confounds:
        return None
    factor = f" ({differs.factor})" if differs.factor else ""
    return f"{CONFOUNDED}: {_items(differs.confounds)} — not the factor of this study{factor}"


def declared(differs: Differs) -> list[str]:
    """Between two architectures: the differences beyond the architecture that the study declares (each
    architecture at its own process counts, say), shown but not flagged."""
    if differs.allowed is None or differs.factor != ARCHITECTURE:
        return []
    return [diff.name for diff in beyond_architecture(differs) if diff.name in differs.allowed]


def differs_text(differs: Differs | None) -> str | None:
    """The line, what the study declares of it, then its flag if any: one string for a bullet or a
    paragraph."""
    if differs is None:
        return None
    text = differs.line
    own = declared(differs)
    if own:
        text += f" ({', '.join(own)}: each architecture's own, as the study declares)"
    flagged = flag(differs)
    return text + (f". {flagged}" if flagged else "")


def named(name: str, differs: Differs | None) -> str | None:
    text = differs_text(differs)
    return f"{name} — {text}" if text else None


def differs_bullets(
    items: Iterable[str | None], intro: str = "What differs between the sides:"
) -> list[Block]:
    """A paragraph and one bullet per comparison (the absent ones left out); nothing when none is there."""
    present = [item for item in items if item]
    return [Paragraph(intro), Bullets(present)] if present else []


def headline_comparisons(summary: Summary) -> list[Differs]:
    """The headline's comparisons: the summary's, else computed from its recorded settings."""
    if summary.comparison.differs is not None:
        return list(summary.comparison.differs)
    return headline_differs(summary.architectures, recorded_settings(summary.environment)) or []


def headline_blocks(summary: Summary) -> list[Block]:
    """Under the headline: what differs in each comparison and, when more than the architecture does, why
    that is shown rather than flagged."""
    comparisons = headline_comparisons(summary)
    if not comparisons:
        return []
    blocks = differs_bullets(
        [f"{d.a} vs {d.b} — {d.line}" for d in comparisons], "What differs between the architectures:"
    )
    beyond = sorted({diff.name for d in comparisons for diff in beyond_architecture(d)})
    if beyond:
        blocks.append(Paragraph(HEADLINE_NOTE.format(beyond=", ".join(beyond))))
    return blocks


def burst_differs(burst: Burst, settings: Settings | None) -> list[Differs]:
    """The burst's comparisons, from the run's recorded settings (the burst starts a stack per queue worker
    concurrency from them, the direct handlers on the first): each queue concurrency against the first,
    each direct handler against the queue at the first concurrency."""
    if settings is None:
        return []
    queue = sorted({run.concurrency for run in burst.runs if run.architecture == "queue" and run.concurrency})
    others = list(
        dict.fromkeys(run.architecture for run in burst.runs if run.architecture not in (None, "queue"))
    )
    if not queue:
        return [architecture_differs(settings, others[0], arch, judged=False) for arch in others[1:]]

    def at(concurrency: int) -> Settings:
        return settings.model_copy(update={"queue_worker_concurrency": concurrency})

    first = queue[0]
    result = [
        comparison_differs(
            at(first),
            "queue",
            at(concurrency),
            "queue",
            sides=(f"queue ×{first}", f"queue ×{concurrency}"),
            factor="worker concurrency",
            allowed={QUEUE_WORKER},
        )
        for concurrency in queue[1:]
    ]
    result += [
        comparison_differs(at(first), "queue", settings, arch, sides=(f"queue ×{first}", str(arch)))
        for arch in others
        if arch is not None
    ]
    return result


def burst_blocks(burst: Burst | None, settings: Settings | None) -> list[Block]:
    if burst is None:
        return []
    items = [f"{d.a} vs {d.b} — {differs_text(d)}" for d in burst_differs(burst, settings)]
    return differs_bullets(items, "What differs between the bursts (from the run's recorded settings):")
