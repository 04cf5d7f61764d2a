"""The raw files of a run folder as plain records (``doc/run-folder.md`` describes the files).

Only reading here: a missing, empty or cut-short file gives an empty result, never an exception, so an
interrupted run still gets a summary.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from benchmark.entries import PREDICT, parse_entry, statistics_kind
from benchmark.summary import Environment, Machine
from scoring_bench.core.settings import Settings
from scoring_bench.core.timing import parse_server_timing

KNOWN_ARCHITECTURES = ("sync", "async", "batched", "queue")
PHASES = ("one_user", "ramp", "sustained", "stress")
LOAD_GENERATOR = "locust"
MACHINE = "machine"
OTHERS = "others"  # the machine less the run's processes (benchmark.sampler)
QUEUE_WORKER = "queue-worker"
BURST = "burst"
ATTRIBUTION = "attribution"
RAW_ENTRIES = (
    "run.json",
    "environment.json",
    "locust",
    "timeit",
    "resources",
    "profiles",
    BURST,
    ATTRIBUTION,
)


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Request:
    """One row of a ``<arch>_requests*.csv`` file. ``name`` is the entry's kind (``predict``,
    ``submit``, ``poll``, ``end_to_end``: :mod:`benchmark.entries`), whether the file named it
    ``queue poll`` or, written before entries were named by architecture, ``poll``."""

    t: float
    latency_ms: float
    ok: bool
    name: str = PREDICT


@dataclass(frozen=True)
class Step:
    """One step of a load shape (``<arch>_schedule.json``)."""

    users: int
    start: float
    end: float
    warmup_s: float

    @property
    def window(self) -> tuple[float, float]:
        """The measured part of the step: warm-up excluded."""
        return self.start + self.warmup_s, self.end

    @property
    def duration_s(self) -> float:
        return self.end - self.start - self.warmup_s


@dataclass(frozen=True)
class TimeitRow:
    """One row of ``timeit/<arch>.csv``."""

    latency_ms: float
    status: int
    server_timing: dict[str, float]


@dataclass(frozen=True)
class Sample:
    """One row of ``resources/<phase>_<arch>.csv``."""

    t: float
    name: str
    cpu_percent: float
    rss_mb: float | None


@dataclass(frozen=True)
class BurstTask:
    """One row of a ``burst/<arch>[_c<concurrency>].csv`` file: times in s since the burst started."""

    submitted_s: float
    accepted_s: float | None
    done_s: float | None
    latency_ms: float | None
    ok: bool


@dataclass(frozen=True)
class BurstEntry:
    """One entry of ``burst/runs.json``: one burst and the files it wrote."""

    architecture: str | None
    concurrency: int | None
    start: float | None
    file: str
    depth_file: str | None = None
    resources_file: str | None = None


@dataclass(frozen=True)
class RunRecord:
    """What ``run.json`` says (``present`` False when it is missing or unreadable)."""

    present: bool
    run_id: str | None = None
    complete: bool = False
    profile: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    errors: list[str] = field(default_factory=list)
    experiments: list[str] | None = None
    architectures: list[str] | None = None


# --------------------------------------------------------------------------- values


def read_json(path: Path) -> Any:
    """The parsed file, or None when it is missing, empty or not valid JSON (e.g. cut short)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def csv_rows(path: Path) -> Iterator[dict[str, str]]:
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            yield from csv.DictReader(handle)
    except OSError:
        return


def number(value: str | None) -> float | None:
    """A finite number from a CSV cell, else None."""
    try:
        parsed = float(value) if value not in (None, "") else None
    except ValueError:
        return None
    return parsed if parsed is not None and math.isfinite(parsed) else None


def integer(value: str | None) -> int | None:
    parsed = number(value)
    return int(parsed) if parsed is not None else None


def as_float(value: Any) -> float | None:
    """A finite number from a JSON value (bools are not numbers), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    return number(str(value))


def _strings(value: Any) -> list[str] | None:
    return list(value) if isinstance(value, list) and all(isinstance(v, str) for v in value) else None


# --------------------------------------------------------------------------- run.json, environment.json


def has_raw_files(run_dir: Path) -> bool:
    """Whether the folder holds any raw file of a run (a folder of a summary and a report only does not)."""
    return any((Path(run_dir) / name).exists() for name in RAW_ENTRIES)


def read_run_record(run_dir: Path) -> RunRecord:
    data = read_json(Path(run_dir) / "run.json")
    if not isinstance(data, dict):
        return RunRecord(present=False)
    profile, run_id = data.get("profile"), data.get("run_id")
    return RunRecord(
        present=True,
        run_id=str(run_id) if run_id else None,
        complete=bool(data.get("complete")),
        profile=str(profile) if profile is not None else None,
        started_at=as_float(data.get("started_at")),
        finished_at=as_float(data.get("finished_at")),
        errors=[str(error) for error in data.get("errors") or []],
        experiments=_strings(data.get("experiments")),
        architectures=_strings(data.get("architectures")),
    )


def read_environment_data(run_dir: Path) -> dict[str, Any] | None:
    """environment.json as written, or None."""
    data = read_json(Path(run_dir) / "environment.json")
    return data if isinstance(data, dict) else None


def environment_model(data: dict[str, Any] | None) -> tuple[Environment | None, list[str]]:
    """environment.json as the summary's model, and what had to be left out (keys the model does not know,
    or the whole file when a value is of the wrong type): the run's report still gets written."""
    if data is None:
        return None, []
    problems: list[str] = []
    known = _known(data, Environment, "", problems)
    if isinstance(known.get("machine"), dict):
        known["machine"] = _known(known["machine"], Machine, "machine.", problems)
    try:
        return Environment.model_validate(known), problems
    except ValidationError as error:
        return None, problems + [f"environment.json does not fit the summary's model, left out: {error}"]


def _known(
    data: dict[str, Any], model: type[Environment] | type[Machine], prefix: str, problems: list[str]
) -> dict[str, Any]:
    unknown = [key for key in data if key not in model.model_fields]
    if unknown:
        problems.append(
            "environment.json: keys the summary does not know, left out: "
            + ", ".join(prefix + key for key in unknown)
        )
    return {key: value for key, value in data.items() if key in model.model_fields}


def recorded_settings(environment: dict[str, Any] | Environment | None) -> Settings | None:
    """The stack's settings as environment.json recorded them (unknown keys ignored), or None."""
    values = (
        environment.settings
        if isinstance(environment, Environment)
        else (environment.get("settings") if environment else None)
    )
    if not isinstance(values, dict):
        return None
    known = {key: value for key, value in values.items() if key in Settings.model_fields}
    return settings_from(known)


def settings_from(values: dict[str, Any]) -> Settings | None:
    """Settings from ``values`` only (see :class:`_RecordedSettings`), or None when they do not validate."""
    try:
        return _RecordedSettings(**values)
    except ValidationError:
        return None


class _RecordedSettings(Settings):
    """Settings from the recorded values only: the environment of the process building the report (its
    NUM_MODELS, ...) must not leak into the ideal latency of a run made elsewhere."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def architectures(run_dir: Path, run: RunRecord) -> list[str]:
    """run.json's architectures, else those any raw file names."""
    if run.architectures:
        return list(dict.fromkeys(run.architectures))
    found = [arch for arch in KNOWN_ARCHITECTURES if _has_arch_files(run_dir, arch)]
    return found or ["sync", "async"]


def _has_arch_files(run_dir: Path, arch: str) -> bool:
    if (run_dir / "timeit" / f"{arch}.csv").exists() or resource_files(run_dir, arch):
        return True
    return any((locust_dir(run_dir, phase) / f"{arch}_schedule.json").exists() for phase in PHASES)


# --------------------------------------------------------------------------- Locust


def repeat_phase(rep: int) -> str:
    """The Locust phase of the ``rep``-th repetition (from 2) of the decisive measurements: one run of
    two steps, 1 user and then the breaking users (``locust/repeat-2/``, ``resources/repeat-2_<arch>.csv``).
    The first repetition is the ``one_user`` and ``sustained`` phases themselves."""
    if rep < 2:
        raise ValueError("the first repetition is the one_user and sustained phases")
    return f"repeat-{rep}"


def locust_dir(run_dir: Path, phase: str) -> Path:
    return Path(run_dir) / "locust" / phase


def read_requests(run_dir: Path, phase: str, arch: str, name: str | None = None) -> list[Request]:
    """The requests of the entry ``name`` (a kind, ``poll``, or an entry, ``queue poll``; default:
    the architecture's :func:`statistics_kind`; ``"*"``: every entry) of every ``<arch>_requests*.csv``
    of the phase, ordered by completion time.

    A row counts when it names this architecture's entry (``queue poll``) or the bare kind (``poll``:
    a run folder from before entries were named by architecture); a row of another architecture
    (several user classes in one Locust) does not. Rows that do not parse (a line cut short by an
    interruption) are skipped.
    """
    wanted = statistics_kind(arch) if name is None else parse_entry(name)[1]
    requests: list[Request] = []
    for path in sorted(locust_dir(run_dir, phase).glob(f"{arch}_requests*.csv")):
        for row in csv_rows(path):
            t, latency = number(row.get("t")), number(row.get("latency_ms"))
            row_arch, kind = parse_entry(row.get("name") or "")
            if t is None or latency is None or row_arch not in (None, arch) or wanted not in ("*", kind):
                continue
            ok = (row.get("ok") or "").strip() in ("1", "true", "True")
            requests.append(Request(t, latency, ok, kind))
    requests.sort(key=lambda request: request.t)
    return requests


def read_schedule(run_dir: Path, phase: str, arch: str) -> list[Step] | None:
    """The steps of the phase's load shape, or None when there is no schedule.

    A step without an ``end`` (the run stopped during it) ends at its last request.
    """
    data = read_json(locust_dir(run_dir, phase) / f"{arch}_schedule.json")
    if not isinstance(data, dict) or not isinstance(data.get("steps"), list):
        return None
    last_t: float | None = None
    steps: list[Step] = []
    for raw in data["steps"]:
        start = as_float(raw.get("start")) if isinstance(raw, dict) else None
        if start is None:
            continue
        end = as_float(raw.get("end"))
        if end is None:
            if last_t is None:
                last_t = max((r.t for r in read_requests(run_dir, phase, arch, "*")), default=None)
            end = last_t if last_t is not None else start
        users = int(as_float(raw.get("users")) or 0)
        steps.append(Step(users, start, end, as_float(raw.get("warmup_s")) or 0.0))
    return steps


# --------------------------------------------------------------------------- timeit, resources, depth


def read_timeit(run_dir: Path, arch: str) -> list[TimeitRow]:
    rows: list[TimeitRow] = []
    for row in csv_rows(Path(run_dir) / "timeit" / f"{arch}.csv"):
        latency, status = number(row.get("latency_ms")), number(row.get("status"))
        if latency is None or status is None:
            continue
        rows.append(TimeitRow(latency, int(status), _parse_timing(row.get("server_timing") or "")))
    return rows


def ok_latencies(rows: Sequence[TimeitRow]) -> list[float]:
    return [row.latency_ms for row in rows if row.status == 200]


def _parse_timing(value: str) -> dict[str, float]:
    try:
        return parse_server_timing(value) if value.strip() else {}
    except ValueError:
        return {}


def resource_path(run_dir: Path, phase: str, arch: str) -> Path:
    return Path(run_dir) / "resources" / f"{phase}_{arch}.csv"


def resource_files(run_dir: Path, arch: str) -> dict[str, Path]:
    """``resources/<phase>_<arch>.csv`` by phase."""
    suffix = f"_{arch}.csv"
    return {
        path.name[: -len(suffix)]: path
        for path in sorted((Path(run_dir) / "resources").glob(f"*{suffix}"))
        if len(path.name) > len(suffix)
    }


def read_resources(path: Path) -> list[Sample]:
    samples: list[Sample] = []
    for row in csv_rows(path):
        t, cpu = number(row.get("t")), number(row.get("cpu_percent"))
        if t is not None and cpu is not None and row.get("name"):
            samples.append(Sample(t, row["name"], cpu, number(row.get("rss_mb"))))
    samples.sort(key=lambda sample: sample.t)
    return samples


def read_remote_workers(run_dir: Path, phase: str, arch: str) -> list[Sample]:
    """``locust/<phase>/<arch>_workers.csv``: the CPU of Locust workers on other machines, as each
    measures itself every second and sends it to its master (``LOCUST_MASTER_URL``,
    ``LOCUST_EXPECT_WORKERS``), named ``locust-worker-<id>``; empty for a local run, whose workers
    are in ``resources/``."""
    samples = [
        Sample(t, f"{LOAD_GENERATOR}-worker-{row['worker']}", cpu, number(row.get("rss_mb")))
        for row in csv_rows(locust_dir(run_dir, phase) / f"{arch}_workers.csv")
        if (t := number(row.get("t"))) is not None
        and (cpu := number(row.get("cpu_percent"))) is not None
        and row.get("worker")
    ]
    return sorted(samples, key=lambda sample: sample.t)


def read_depth(path: Path) -> list[tuple[float, float]]:
    """``(t, depth)`` rows of a queue depth CSV, ordered by time."""
    rows = [
        (t, d)
        for row in csv_rows(path)
        if (t := number(row.get("t"))) is not None and (d := number(row.get("depth"))) is not None
    ]
    return sorted(rows)


def queue_depth_path(run_dir: Path, phase: str) -> Path:
    return Path(run_dir) / "resources" / f"{phase}_queue_depth.csv"


def read_profile_shares(run_dir: Path, arch: str) -> dict[str, Any] | None:
    """The ``shares`` of ``profiles/<arch>/breakdown.json``, or None."""
    data = read_json(Path(run_dir) / "profiles" / arch / "breakdown.json")
    shares = data.get("shares") if isinstance(data, dict) else None
    return shares if isinstance(shares, dict) else None


# --------------------------------------------------------------------------- burst


def burst_dir(run_dir: Path) -> Path:
    return Path(run_dir) / BURST


def read_burst_index(run_dir: Path) -> tuple[int | None, list[BurstEntry]] | None:
    """``burst/runs.json``: its ``tasks`` and its entries (those with a start and a file), or None when
    it is missing or unreadable."""
    index = read_json(burst_dir(run_dir) / "runs.json")
    if not isinstance(index, dict) or not isinstance(index.get("runs"), list):
        return None
    entries = [_burst_entry(entry) for entry in index["runs"] if isinstance(entry, dict)]
    tasks = as_float(index.get("tasks"))
    return int(tasks) if tasks is not None else None, entries


def _burst_entry(entry: dict[str, Any]) -> BurstEntry:
    concurrency = as_float(entry.get("concurrency"))
    architecture, depth, resources = (
        entry.get("architecture"),
        entry.get("depth_file"),
        entry.get("resources_file"),
    )
    return BurstEntry(
        architecture=str(architecture) if architecture is not None else None,
        concurrency=int(concurrency) if concurrency is not None else None,
        start=as_float(entry.get("start")),
        file=str(entry.get("file")),
        depth_file=str(depth) if depth else None,
        resources_file=str(resources) if resources else None,
    )


def read_burst_tasks(path: Path) -> list[BurstTask]:
    tasks: list[BurstTask] = []
    for row in csv_rows(path):
        submitted = number(row.get("submitted_s"))
        if submitted is None:
            continue
        tasks.append(
            BurstTask(
                submitted,
                number(row.get("accepted_s")),
                number(row.get("done_s")),
                number(row.get("latency_ms")),
                (row.get("ok") or "").strip() == "1",
            )
        )
    return tasks
