"""The "Targets" section: the product's performance targets (:mod:`benchmark.targets`) against the run."""

from __future__ import annotations

from benchmark.report.blocks import Block, Heading, Paragraph, Table
from benchmark.report.format import number
from benchmark.summary import Summary
from benchmark.targets import check_targets

VERDICT = {True: "met", False: "missed", None: "-"}
INTRO = (
    "The targets of the default stack on a 2-core machine with everything on it, set before "
    "measuring; a missed target is a finding, not a failure of the run. A repeated measurement is judged "
    "by its median; a throughput's limit is scaled by this machine's speed (its calibration)."
)


def target_blocks(summary: Summary) -> list[Block]:
    rows = [
        [
            c.target,
            c.architecture,
            number(c.measured, c.spec, ""),
            f"{c.limit:{c.spec}}" if c.spec != ".1f" else f"{c.limit:.4g}",
            VERDICT[c.met] + (f" ({c.note})" if c.note else ""),
        ]
        for c in check_targets(summary)
    ]
    return [
        Heading(2, "Targets"),
        Paragraph(INTRO),
        Table(["target", "architecture", "measured", "limit", "verdict"], rows, text_columns=2),
    ]
