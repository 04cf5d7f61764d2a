"""The raw files of the open-loop experiment and of the cross-check: where they go, and one request's row.

Written by the generator and the experiment (:mod:`benchmark.openloop.generator`,
:mod:`benchmark.openloop.experiment`), read only by :mod:`benchmark.analysis.openloop`. In a run folder::

    openloop/<arch>/rep-<k>/sweep.json     one sweep (every rate of one architecture, in order), rewritten
                                           after each rate: {"architecture", "rep", "arrivals", "seed",
                                           "connections", "url", "rates": [{"offered_rps", "duration_s",
                                           "requests" (scheduled), "start" (epoch s), "file"}]}
    openloop/<arch>/rep-<k>/rate-<i>.csv   one row per scheduled request of rate i (columns below)
    openloop/<arch>/rep-<k>/generator.log  the generator's output
    resources/openloop_<arch>_rep<k>.csv   CPU and memory meanwhile (benchmark.sampler; the generator is
                                           ``openloop``)
    crosscheck/<arch>/closed.json          the closed loop: {"architecture", "users", "duration_s",
                                           "warmup_s", "start" (epoch s), "file", "url"}
    crosscheck/<arch>/closed.csv           its requests (columns below; scheduled = issued); the window
                                           is the requests done within [warmup_s, warmup_s + duration_s]
    crosscheck/<arch>/wrk.lua, wrk.txt     when wrk is on PATH: its script and its output (--latency)
    crosscheck/<arch>/generator.log
    resources/crosscheck_<arch>.csv        CPU meanwhile (the closed loop is ``openloop``, wrk ``wrk``)

A request's row, times in seconds since the start of its rate (or of the closed loop)::

    scheduled_s  when the schedule said to send it
    issued_s     when the generator issued it (issued − scheduled: how late the generator was)
    sent_s       when it went out on a connection (the first HTTP call of a queue task); later than
                 issued_s when every connection was busy (that wait counts in the corrected latency)
    done_s       when its answer (a queue task: its result) was there, or the client gave up
    ok           1: a valid score (a task that succeeded with one)
    status       the HTTP status (sync, async, batched), the task's final status (queue), or
                 ``no answer: <why>`` (no answer came: a transport error, a timeout, a task not done in
                 time)
    task_id      queue: the id its submit was answered with (empty: the submit was refused or got no
                 answer); the faults experiment's task ledger follows every such task to its end

The corrected latency is done − scheduled, the uncorrected one done − sent. An empty cell is a time that
never came (e.g. a request still waiting for a connection when its time ran out has no ``sent_s``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

COLUMNS = ("scheduled_s", "issued_s", "sent_s", "done_s", "ok", "status", "task_id")
NO_ANSWER = "no answer"
STATUS_CHARS = 100
SWEEP_JSON = "sweep.json"
CLOSED_JSON = "closed.json"
CLOSED_CSV = "closed.csv"
WRK_LUA = "wrk.lua"
WRK_TXT = "wrk.txt"
GENERATOR_LOG = "generator.log"
GENERATOR = "openloop"  # the generator's name in the resources files
WRK = "wrk"


@dataclass(frozen=True)
class RequestRecord:
    """One row of a rate's CSV (see the module's docstring)."""

    scheduled_s: float
    issued_s: float | None
    sent_s: float | None
    done_s: float | None
    ok: bool
    status: str
    task_id: str = ""

    @property
    def answered(self) -> bool:
        """Whether an answer came (a valid one or not)."""
        return self.done_s is not None and not self.status.startswith(NO_ANSWER)


def no_answer(why: str) -> str:
    """The status of a request that got no answer."""
    return f"{NO_ANSWER}: {why}"[:STATUS_CHARS]


def csv_row(record: RequestRecord) -> list[str]:
    """A record as the cells of its CSV row (µs resolution)."""
    times = (record.scheduled_s, record.issued_s, record.sent_s, record.done_s)
    ok = "1" if record.ok else "0"
    return [*("" if t is None else f"{t:.6f}" for t in times), ok, record.status, record.task_id]


def record_from_row(row: Mapping[str, str | None]) -> RequestRecord | None:
    """A CSV row (``csv.DictReader``) as a record, or None when it does not parse (a line cut short)."""
    scheduled = _seconds(row.get("scheduled_s"))
    if scheduled is None:
        return None
    return RequestRecord(
        scheduled_s=scheduled,
        issued_s=_seconds(row.get("issued_s")),
        sent_s=_seconds(row.get("sent_s")),
        done_s=_seconds(row.get("done_s")),
        ok=(row.get("ok") or "").strip() == "1",
        status=(row.get("status") or "").strip(),
        task_id=(row.get("task_id") or "").strip(),
    )


def _seconds(value: str | None) -> float | None:
    try:
        parsed = float(value) if value not in (None, "") else None
    except ValueError:
        return None
    return parsed if parsed is not None and math.isfinite(parsed) else None


def sweep_dir(run_dir: Path, arch: str, rep: int) -> Path:
    return Path(run_dir) / "openloop" / arch / f"rep-{rep}"


def rate_file(index: int) -> str:
    return f"rate-{index}.csv"


def sweep_resources(run_dir: Path, arch: str, rep: int) -> Path:
    return Path(run_dir) / "resources" / f"openloop_{arch}_rep{rep}.csv"


def crosscheck_dir(run_dir: Path, arch: str) -> Path:
    return Path(run_dir) / "crosscheck" / arch


def crosscheck_resources(run_dir: Path, arch: str) -> Path:
    return Path(run_dir) / "resources" / f"crosscheck_{arch}.csv"
