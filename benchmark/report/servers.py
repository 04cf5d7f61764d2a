"""The attribution section's "server apart from the framework" part: the servers study's table (each
framework on each server over the rounds) and the sentence splitting the sync–async gap between the
servers and the framework (benchmark/analysis/servers.py computes it)."""

from __future__ import annotations

from benchmark.report.blocks import Block, Heading, Paragraph, Table
from benchmark.report.differs import differs_bullets, differs_text
from benchmark.report.format import number, share, spread, whole_percent
from benchmark.summary import GapSplit, ServerFramework, Share, Spread

SERVERS_TITLE = "The server apart from the framework"


def servers_blocks(study: ServerFramework | None) -> list[Block]:
    """The heading, what was measured, the table and the split; nothing when the study did not run."""
    if study is None:
        return []
    blocks: list[Block] = [Heading(3, SERVERS_TITLE), Paragraph(_intro(study))]
    if study.missing:
        blocks.append(Paragraph("⚠ Not measured: " + "; ".join(study.missing) + "."))
    if study.servers:
        blocks.append(servers_table(study))
    blocks += [Paragraph(text) for text in split_sentences(study)]
    items = [
        f"{level.differs.a} vs {level.differs.b} — {differs_text(level.differs)}"
        for level in study.servers
        if level.differs
    ]
    return blocks + differs_bullets(items, "What differs between each configuration and its reference:")


def _intro(study: ServerFramework) -> str:
    return (
        "The Flask handler on gunicorn gthread (the default), gunicorn gevent (sync code, async I/O) and "
        "granian (WSGI); the FastAPI handler on uvicorn (the default) and granian (ASGI). Each was measured "
        f"in {study.rounds} round(s), every configuration once a round: p50 of sequential requests at one "
        f"user, the throughput of {study.load_users} closed-loop users, and the CPU per request of the "
        "handler, its model API and Redis under that load. Mean of the rounds (min–max, n)."
    )


def _cell(value: float | None, s: Spread | None, spec: str, unit: str) -> str:
    if s is None:
        return number(value, spec, unit)
    return spread(value, s.min, s.max, s.n, spec, unit)


def servers_table(study: ServerFramework) -> Table:
    rows = [
        [
            level.framework,
            level.server,
            _cell(level.p50_ms, level.p50_spread, ".1f", "ms"),
            _cell(level.rps, level.rps_spread, ".0f", "req/s"),
            _cell(level.cpu_ms_per_request, level.cpu_spread, ".2f", "ms"),
            share(level.failure_ratio),
        ]
        for level in study.servers
    ]
    header = [
        "framework",
        "server",
        "p50 at 1 user",
        f"req/s at {study.load_users} users",
        "CPU per request",
        "failures",
    ]
    return Table(header, rows, text_columns=2)


def _share_text(s: Share) -> str:
    text = whole_percent(s.value)
    if s.low is not None and s.high is not None:
        text += f" ({whole_percent(s.low)} to {whole_percent(s.high)} over the rounds)"
    return text


def split_sentence(split: GapSplit, users: int | None, rounds: int) -> str:
    """How much of one metric's gap is the framework's and how much the servers'."""
    latency = split.metric == "p50_ms"
    what = "the p50 gap at one user" if latency else f"the throughput gap at {users} users"
    unit, spec = ("ms", ".1f") if latency else ("req/s", ".0f")
    gap = f"{'sync − async' if latency else 'async − sync'}: {number(split.gap, spec, unit)}"
    if split.gap_low is not None and split.gap_high is not None:
        gap += f", {split.gap_low:{spec}} to {split.gap_high:{spec}} over the rounds"
    head = f"Of {what} between the defaults ({gap})"
    if split.gap_within_noise:
        return head + ": the gap itself is within the noise of the rounds, so there is nothing to split."
    framework = split.framework
    if framework.value is None:
        return head + ": the frameworks on granian were not both measured, so it cannot be split."
    servers = Share(
        value=1 - framework.value,
        low=None if framework.high is None else 1 - framework.high,
        high=None if framework.low is None else 1 - framework.low,
    )
    text = (
        f"{head}, {_share_text(framework)} remains with both frameworks on granian "
        f"({number(split.framework_gap, spec, unit)}): the framework's and its I/O model's; the servers' "
        f"part is {_share_text(servers)}."
    )
    if rounds < 2:
        text += " One round: no spread, so no telling whether either part is noise."
    elif split.servers_within_noise and split.framework_within_noise:
        text += " Both parts are within the noise of the rounds: these rounds cannot split this gap."
    elif split.servers_within_noise:
        text += " The servers' part is within the noise of the rounds (its range reaches 0%)."
    elif split.framework_within_noise:
        text += " The framework's part is within the noise of the rounds (its range reaches 0%)."
    elif framework.low is None:
        text += " (No range: a configuration was measured once.)"
    gevent = split.gevent
    if gevent.value is not None:
        if gevent.low is not None and gevent.high is not None and gevent.low <= 0 <= gevent.high:
            note = ": within the noise of the rounds"
        else:
            note = " (it widens the gap)" if gevent.value < 0 else ""
        text += f" gevent-patched Flask (sync code, async I/O) closes {_share_text(gevent)} of it{note}."
    return text


def split_sentences(study: ServerFramework) -> list[str]:
    """The split for the p50 at one user and for the throughput."""
    sentences = [
        split_sentence(split, study.load_users, study.rounds)
        for split in (study.latency, study.throughput)
        if split is not None
    ]
    if not sentences:
        sentences.append(
            "The defaults (Flask on gunicorn gthread, FastAPI on uvicorn) were not both measured: "
            "there is no gap to split."
        )
    return sentences
