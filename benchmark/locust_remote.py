"""Drive a Locust master through its web API and write the phase's raw files as a local run does.

Two ways the load comes from other machines (``doc/methodology.md``, "Locust on other machines"):
``LOCUST_MASTER_URL`` names a master someone else started with the project's locustfile and its web
UI on; ``LOCUST_EXPECT_WORKERS`` has the runner start the master itself (:mod:`benchmark.load`) and
wait for workers started elsewhere. Either way a phase is the same conversation with the master:
``POST /stats/reset``, ``POST /swarm`` with the stages (the locustfile's ``StagesShape`` runs them on
the master, as in a local run), poll until the shape has finished, wait for every worker's last
records (:mod:`benchmark.locust_forwarding`), then fetch Locust's own CSV and HTML files, the
per-request records and the schedule.

The files keep the names the analysis reads (``<arch>_requests.remote.csv``, ``<arch>_schedule.json``)
with every time moved into this machine's clock (the master's clock offset, measured around one
request), plus ``<arch>_remote.json``: what was fetched, what is missing and why.

The decisions (the form, the clock, the CSV conversion, when a phase is done) are plain functions;
:class:`MasterClient` and :func:`drive_phase` are the I/O around them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

# what the locustfile adds to a master (benchmark/locust_forwarding.py; this module imports no Locust,
# which would monkey-patch the runner's process)
MESSAGE = "scoring_bench_requests"
STATUS_PATH = "/scoring-bench/status"
REQUESTS_PATH = "/scoring-bench/requests.csv"
WORKERS_PATH = "/scoring-bench/workers.csv"
HEADER = "t,name,latency_ms,ok\n"
WORKERS_HEADER = "t,worker,cpu_percent,rss_mb\n"
SHAPE_CLASS = "StagesShape"
POLL_S = 1.0
FINAL_WAIT_S = 15.0  # after the shape ends, for every worker's last batch of records
# then for Locust's own statistics to count them too: workers report every 3 s (WORKER_REPORT_INTERVAL),
# and the web API caches its answer up to 2 s
STATS_WAIT_S = 12.0
HTTP_TIMEOUT_S = 30.0
# Locust's own files: (path on the master, file name after the architecture); the history only when
# the master was started with --csv and --csv-full-history
LOCUST_FILES = (
    ("/stats/requests/csv", "_stats.csv"),
    ("/stats/failures/csv", "_failures.csv"),
    ("/exceptions/csv", "_exceptions.csv"),
    ("/stats/requests_full_history/csv", "_stats_history.csv"),
    ("/stats/report?download=1", ".html"),
)
NOT_SAMPLED = (
    "the Locust workers run on other machines: the runner does not sample them (resources/ has no "
    "locust rows); each worker measures its own CPU and memory once a second and sends them with its "
    "records (<arch>_workers.csv), which the report's load generator check reads; their machines' "
    "CPU is not measured"
)


class RemoteLocustError(RuntimeError):
    """The master cannot run the phase (unreachable, busy, no workers, wrong user class, hung)."""


# --------------------------------------------------------------------------- plain functions


def swarm_form(
    user_class: str, phase: str, arch: str, stages: Sequence[Mapping[str, Any]], queue: Mapping[str, Any]
) -> list[tuple[str, str]]:
    """The ``POST /swarm`` form: the user class and the shape (used when the master runs with
    ``--class-picker``, ignored otherwise), the stages, and the locustfile's own options, which
    the master sends its workers with each spawn. ``user_count``/``spawn_rate`` are the first
    stage's, for a master whose web UI validates them; the shape sets the users of every stage."""
    first = int(stages[0]["users"]) if stages else 1
    form = [
        ("user_count", str(first)),
        ("spawn_rate", str(max(first, 1))),
        ("user_classes", user_class),
        ("shape_class", SHAPE_CLASS),
        ("stages", json.dumps([dict(s) for s in stages])),
        ("phase", phase),
        ("architecture", arch),
    ]
    return form + [(key, str(value)) for key, value in queue.items()]


CLOCK_SAMPLES = 5


def clock_offset(samples: Sequence[tuple[float, float, float]]) -> float:
    """The master's clock minus ours, from ``(before, master_now, after)`` readings: the one with the
    shortest round trip, whose midpoint is closest to when the master read its clock (as NTP does);
    the error is at most half that round trip."""
    before, master_now, after = min(samples, key=lambda sample: sample[2] - sample[0])
    return master_now - (before + after) / 2.0


def csv_lines(rows: Sequence[Sequence[Any]], offset_s: float) -> list[str]:
    """Forwarded rows ``(t, name, latency_ms, ok)`` as lines of a requests CSV, ``t`` moved by
    ``offset_s`` (the master's side of :mod:`benchmark.locust_forwarding`)."""
    return [
        f"{float(t) + offset_s:.6f},{name},{float(ms):.3f},{1 if ok else 0}\n" for t, name, ms, ok in rows
    ]


def shift_csv(text: str, header: str, shift_s: float) -> tuple[str, int]:
    """A forwarded CSV (``header``: ``t`` first, a number third: the records' ``latency_ms``, the
    workers' ``cpu_percent``) with ``t`` moved by ``shift_s``; rows that do not parse are dropped.
    Returns the text and the number of rows kept."""
    columns = header.count(",") + 1
    out = [header]
    for line in text.splitlines()[1:]:
        parts = line.split(",")
        if len(parts) != columns:
            continue
        try:
            t = float(parts[0]) + shift_s
            float(parts[2])
        except ValueError:
            continue
        out.append(f"{t:.6f},{','.join(parts[1:])}\n")
    return "".join(out), len(out) - 1


def schedule_document(status: Mapping[str, Any], shift_s: float) -> dict[str, Any]:
    """``<arch>_schedule.json`` from the master's status: its steps, times moved by ``shift_s``."""

    def moved(value: Any) -> Any:
        return None if value is None else float(value) + shift_s

    steps = [
        {**step, "start": moved(step.get("start")), "end": moved(step.get("end"))}
        for step in status.get("steps") or []
    ]
    return {"phase": status.get("phase"), "architecture": status.get("architecture"), "steps": steps}


def shape_done(status: Mapping[str, Any]) -> bool:
    """The shape has run its last stage and the master has stopped its users."""
    steps = status.get("steps") or []
    return status.get("state") == "stopped" and bool(steps) and steps[-1].get("end") is not None


def busy(status: Mapping[str, Any]) -> bool:
    return status.get("state") in ("spawning", "running", "cleanup")


def missing_finals(status: Mapping[str, Any]) -> list[str]:
    """Workers connected whose last batch of records has not arrived."""
    return sorted(set(status.get("workers") or []) - set(status.get("finals") or []))


def class_problem(status: Mapping[str, Any], user_class: str, url: str) -> str | None:
    """Why the master does not run ``user_class`` alone, or None."""
    classes = list(status.get("user_classes") or [])
    if classes == [user_class]:
        return None
    return (
        f"the Locust master at {url} runs {', '.join(classes) or 'no user class'}, not {user_class} alone: "
        f"start it with --class-picker (any architecture) or with {user_class} as its only user class"
    )


def counted(stats: Mapping[str, Any]) -> int | None:
    """Requests (every entry) Locust's statistics hold: its ``Aggregated`` row of ``/stats/requests``."""
    rows = stats.get("stats") or []
    total = rows[-1].get("num_requests") if rows else None
    return int(total) if isinstance(total, (int, float)) else None


# --------------------------------------------------------------------------- I/O


class MasterClient:
    """The master's web API (Locust's endpoints and the locustfile's own)."""

    def __init__(self, url: str, timeout_s: float = HTTP_TIMEOUT_S) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self.session = requests.Session()
        self.session.trust_env = False  # a proxy from the environment must not stand between us

    def _get(self, path: str, fresh: bool = False) -> requests.Response:
        try:
            if fresh:  # a connection of its own, closed after
                with requests.Session() as session:
                    session.trust_env = False
                    return session.get(self.url + path, timeout=self.timeout_s)
            return self.session.get(self.url + path, timeout=self.timeout_s)
        except requests.RequestException as exc:
            raise RemoteLocustError(f"the Locust master at {self.url} did not answer {path}: {exc}") from exc

    def _post(self, path: str, data: Any = None) -> requests.Response:
        try:
            resp = self.session.post(self.url + path, data=data, timeout=self.timeout_s)
        except requests.RequestException as exc:
            raise RemoteLocustError(f"the Locust master at {self.url} did not answer {path}: {exc}") from exc
        if resp.status_code != 200:
            raise RemoteLocustError(f"POST {self.url}{path}: {resp.status_code} {resp.text[:200]}")
        return resp

    def status(self, fresh: bool = False) -> dict[str, Any]:
        resp = self._get(STATUS_PATH, fresh)
        if resp.status_code == 404:
            raise RemoteLocustError(
                f"{self.url} answers no {STATUS_PATH}: is it a Locust master running benchmark/locustfile.py "
                "with its web UI on (no --headless)?"
            )
        resp.raise_for_status()
        data: dict[str, Any] = resp.json()
        return data

    def timed_status(self) -> tuple[dict[str, Any], float]:
        """The status and the master's clock offset from ours (:func:`clock_offset`). Each sample on a
        connection of its own: on a reused one, Locust's web server answered ~42 ms late (a delayed
        ACK; its clock read 1 ms after we sent), which biased the midpoint by half of that."""
        samples = []
        for _ in range(CLOCK_SAMPLES):
            before = time.time()
            status = self.status(fresh=True)
            samples.append((before, float(status["now"]), time.time()))
        return status, clock_offset(samples)

    def request_stats(self) -> dict[str, Any]:
        data: dict[str, Any] = self._get("/stats/requests").json()
        return data

    def text(self, path: str) -> str | None:
        resp = self._get(path)
        return resp.text if resp.status_code == 200 else None

    def swarm(self, form: list[tuple[str, str]]) -> dict[str, Any]:
        answer: dict[str, Any] = self._post("/swarm", form).json()
        if not answer.get("success"):
            raise RemoteLocustError(
                f"the Locust master at {self.url} refused to swarm: {answer.get('message')}"
            )
        return answer

    def stop(self) -> None:
        self._post("/stop")

    def reset_stats(self) -> None:
        self._post("/stats/reset")


@dataclass
class PhaseRecord:
    """``<arch>_remote.json``: how the phase ran on the master and what the folder holds of it."""

    master_url: str
    workers: list[str]
    clock_offset_s: float
    requests: int
    locust_counted: int | None = None  # what Locust's own statistics (<arch>_stats.csv) count
    fetched: list[str] = field(default_factory=list)
    missing: dict[str, str] = field(default_factory=dict)
    not_sampled: str = NOT_SAMPLED


def drive_phase(
    client: MasterClient,
    user_class: str,
    arch: str,
    phase: str,
    stages: Sequence[Mapping[str, Any]],
    queue: Mapping[str, Any],
    out: Path,
    timeout_s: float,
    tick: Callable[[float], None] = lambda _: None,
    same_clock: bool = False,
) -> PhaseRecord:
    """Run ``stages`` on the master and write the phase's files to ``out``; raise
    :class:`RemoteLocustError` when it cannot (the master is then stopped if it had started).
    ``same_clock``: the master runs on this machine, its times need no moving."""
    status = client.status()
    if busy(status):
        raise RemoteLocustError(
            f"the Locust master at {client.url} is already running a test ({status['state']})"
        )
    if not status.get("worker_count"):
        raise RemoteLocustError(f"the Locust master at {client.url} has no worker connected")
    client.reset_stats()
    client.swarm(swarm_form(user_class, phase, arch, stages, queue))
    began = time.monotonic()
    try:
        problem = class_problem(client.status(), user_class, client.url)
        if problem:
            raise RemoteLocustError(problem)
        while not shape_done(status := client.status()):
            elapsed = time.monotonic() - began
            if elapsed > timeout_s:
                raise RemoteLocustError(
                    f"the phase did not finish on {client.url} within {timeout_s:.0f} s "
                    f"({status.get('state')})"
                )
            tick(elapsed)
            time.sleep(POLL_S)
    except BaseException:
        client.stop()
        raise
    waited = time.monotonic()
    while missing_finals(status) and time.monotonic() - waited < FINAL_WAIT_S:
        time.sleep(0.2)
        status = client.status()
    waited, records = time.monotonic(), status.get("records")
    while counted(client.request_stats()) != records and time.monotonic() - waited < STATS_WAIT_S:
        time.sleep(0.5)
    return _fetch(client, arch, out, same_clock)


def _fetch(client: MasterClient, arch: str, out: Path, same_clock: bool) -> PhaseRecord:
    """Write the phase's files, every time in this machine's clock."""
    status, offset = (client.status(), 0.0) if same_clock else client.timed_status()
    text, count = shift_csv(client.text(REQUESTS_PATH) or HEADER, HEADER, -offset)
    record = PhaseRecord(client.url, list(status.get("workers") or []), offset, count)
    record.locust_counted = counted(client.request_stats())
    if record.locust_counted != count:
        record.missing[f"{arch}_stats.csv"] = (
            f"Locust's statistics count {record.locust_counted} requests, the per-request records {count}"
        )
    requests_file = f"{arch}_requests.remote.csv"
    (out / requests_file).write_text(text, encoding="utf-8")
    schedule_file = f"{arch}_schedule.json"
    (out / schedule_file).write_text(
        json.dumps(schedule_document(status, -offset), indent=1), encoding="utf-8"
    )
    workers_text, _ = shift_csv(client.text(WORKERS_PATH) or WORKERS_HEADER, WORKERS_HEADER, -offset)
    (out / f"{arch}_workers.csv").write_text(workers_text, encoding="utf-8")
    record.fetched += [requests_file, schedule_file, f"{arch}_workers.csv"]
    late = missing_finals(status)
    if late:
        record.missing[requests_file] = (
            f"the last records of worker(s) {', '.join(late)} did not arrive within {FINAL_WAIT_S:.0f} s"
        )
    for path, suffix in LOCUST_FILES:
        body = client.text(path)
        name = f"{arch}{suffix}"
        if body is None:
            record.missing[name] = (
                f"{path} not available on the master (the history needs --csv and --csv-full-history)"
            )
            continue
        (out / name).write_text(body, encoding="utf-8")
        record.fetched.append(name)
    logs = client.text("/logs")
    if logs is not None:
        (out / f"{arch}.log").write_text(logs, encoding="utf-8")
    (out / f"{arch}_remote.json").write_text(json.dumps(record.__dict__, indent=1), encoding="utf-8")
    return record
