"""The "differs: …" line under every comparison the report makes, and the flag of a study whose sides differ
in more than its factor (benchmark/analysis/differs.py computes both from the recorded settings).

The headline's comparisons are not flagged: each architecture at its own tuned default is a legitimate
choice. Their diff is shown with a short explanation that points to the per-core figures. A summary.json
written before the diffs existed has none: the headline's are computed here from its recorded settings.
"""

from __future__ import annotations

from collections.abc import Iterable

from benchmark.analysis.comparison import headline_differs
from benchmark.analysis.differs import beyond_architecture
from benchmark.analysis.raw import recorded_settings
from benchmark.report.blocks import Block, Bullets, Paragraph
from benchmark.summary import Differs, SettingDifference, Summary

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


def differs_text(differs: Differs | None) -> str | None:
    """The line, then its flag if any: one string for a bullet or a paragraph."""
    if differs is None:
        return None
    flagged = flag(differs)
    return differs.line + (f". {flagged}" if flagged else "")


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
