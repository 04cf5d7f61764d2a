"""The report's lines about an external target (``BENCH_TARGET=external``, benchmark/external.py): where the
stack was, that someone else started it, what the run skipped against it and why, and that the machine
described is the load generator's. A run on its own local stack shows none of this."""

from __future__ import annotations

from benchmark.report.blocks import Block, Bullets, Heading, Paragraph
from benchmark.summary import Environment, StackTarget

MACHINE = "Machine"
GENERATOR_MACHINE = "Machine (the load generator's)"
GENERATOR_MACHINE_NOTE = (
    "This is the machine that generated the load, and its calibration: the stack under test ran elsewhere, "
    "started by someone else, and its machines are not described here (the stack line below gives the "
    "settings this harness was given, which the target may not share)."
)
SKIPPED_HEADING = "Skipped against the external target"


def external_target(environment: Environment | None) -> StackTarget | None:
    """The run's external target, None when it measured its own local stack (or did not say)."""
    target = environment.target if environment else None
    return target if target is not None and target.mode == "external" else None


def target_line(target: StackTarget) -> str:
    """The header's sentence: where each service was, and who started the stack."""
    urls = ", ".join(f"{s.name} {s.url}" for s in target.services if s.url is not None)
    source = f" (targets file {target.file})" if target.file else ""
    return (
        f"External target: {urls or 'no URL recorded'}{source}, started by someone else: the harness "
        "started, restarted and stopped none of its processes, and skipped what would need that (below)."
    )


def resources_line(target: StackTarget) -> str:
    """Where the services' resources (CPU, memory) came from."""
    if target.prometheus_url:
        return f"The services' CPU and memory: from Prometheus at {target.prometheus_url}."
    metrics = sum(len(s.metrics) for s in target.services)
    return f"The services' CPU and memory: from their own /metrics ({metrics} URLs, summed per service)."


def external_blocks(environment: Environment | None) -> list[Block]:
    """The header paragraph and the skipped experiments; nothing for a local run."""
    target = external_target(environment)
    if target is None:
        return []
    blocks: list[Block] = [Paragraph(target_line(target)), Paragraph(resources_line(target))]
    blocks += [Paragraph(f"⚠ {problem}: its resources are missing.") for problem in target.problems]
    blocks.append(Heading(2, SKIPPED_HEADING))
    if target.skipped:
        blocks.append(Bullets([f"{skip.experiment}: {skip.reason}" for skip in target.skipped]))
    else:
        blocks.append(Paragraph("Nothing: every experiment asked for runs without a restart."))
    return blocks


def machine_heading(environment: Environment | None) -> str:
    return GENERATOR_MACHINE if external_target(environment) else MACHINE


def machine_note(environment: Environment | None) -> list[str]:
    """The Machine section's first line when the stack was elsewhere."""
    return [GENERATOR_MACHINE_NOTE] if external_target(environment) else []
