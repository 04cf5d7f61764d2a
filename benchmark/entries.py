"""The names of the Locust entries: ``<architecture> <kind>``, e.g. ``sync predict``, ``queue poll``.

Locust merges the requests of one name into one row of its statistics and one curve of its charts, so
when several user classes run in one Locust (the web UI's default) each architecture needs names of
its own: ``sync predict`` beside ``async predict``, not one ``predict`` for both. Run folders written
before these names carry the bare kinds (``predict``, ``submit``, ``poll``, ``end_to_end``);
:func:`parse_entry` reads both, so old folders still rebuild.
"""

from __future__ import annotations

PREDICT = "predict"  # one scoring request of sync, async, batched
SUBMIT = "submit"  # the queue user's submit
POLL = "poll"  # the queue user's long polls
END_TO_END = "end_to_end"  # the queue user's submit → result, a synthetic entry (request type QUEUE)
KINDS = (PREDICT, SUBMIT, POLL, END_TO_END)


def entry_name(arch: str, kind: str) -> str:
    """The entry of ``kind`` for ``arch``: ``entry_name("queue", POLL) == "queue poll"``."""
    return f"{arch} {kind}"


def statistics_kind(arch: str) -> str:
    """The kind of entry an architecture's statistics are computed from: the queue's ``end_to_end``
    (submit → result; its submits and polls are steps of one request), the others' ``predict``."""
    return END_TO_END if arch == "queue" else PREDICT


def parse_entry(name: str) -> tuple[str | None, str]:
    """``(architecture, kind)`` of an entry name; a legacy bare name has no architecture:
    ``"async predict"`` → ``("async", "predict")``, ``"predict"`` → ``(None, "predict")``."""
    arch, sep, kind = name.strip().rpartition(" ")
    return (arch, kind) if sep and arch else (None, kind)
