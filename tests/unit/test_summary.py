"""The typed, versioned summary: round trip, old (v1) files, unknown versions and keys, and a report from a
summary alone (a folder without raw files, like doc/sample-report)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from benchmark.analysis import build_summary, load_summary, read_run
from benchmark.analysis.series import RunSeries
from benchmark.report import build_report, compare_runs
from benchmark.report.headline import SECTION_EXPERIMENT
from benchmark.summary import (
    READABLE_VERSIONS,
    SCHEMA_VERSION,
    ArchitectureSummary,
    SchemaVersionError,
    Summary,
)
from tests.fixtures.run_folder import make_run_folder

# the quick run of 2026-11-23 (the first doc/sample-report): a version-1 summary.json and its own report.md
SAMPLE = Path(__file__).resolve().parents[1] / "fixtures" / "sample-report-v1"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("results") / "20261202-100000"
    return make_run_folder(folder, attribution=True, queue=True)


@pytest.fixture()
def sample_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "sample-report"
    shutil.copytree(SAMPLE, copy)
    return copy


def _sample_data() -> dict[str, Any]:
    return json.loads((SAMPLE / "summary.json").read_text(encoding="utf-8"))


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_without_nulls(item) for item in value]
    return value


def test_a_built_summary_round_trips(run_dir: Path, tmp_path: Path) -> None:
    summary = build_summary(run_dir)
    assert summary.schema_version == SCHEMA_VERSION == 4
    loaded = Summary.load(summary.write(tmp_path))
    assert loaded == summary
    assert loaded.to_json() == summary.to_json()
    assert loaded.attribution is not None and loaded.attribution.steps[0].from_ == "client per request"
    assert '"from": "client per request"' in summary.to_json()  # the JSON key is "from"


def test_the_v1_sample_loads_with_every_value(tmp_path: Path) -> None:
    summary = Summary.load(SAMPLE / "summary.json")
    assert summary.schema_version == 1 and 1 in READABLE_VERSIONS
    assert list(summary.architectures) == ["sync", "async", "queue"]
    queue = summary.architectures["queue"].queue
    assert queue is not None and set(queue.phases) == {"one_user", "ramp", "sustained", "stress"}
    assert summary.attribution is not None and summary.attribution.gap is not None
    assert summary.burst is not None and summary.burst.runs
    # every value of the file is in the model: written back, it is the same (fields v2 added are null)
    written = json.loads(summary.to_json())
    assert _without_nulls(written) == _without_nulls(_sample_data())


def test_the_report_of_the_v1_sample_builds_from_its_summary(sample_copy: Path) -> None:
    before = (sample_copy / "summary.json").read_bytes()
    run = read_run(sample_copy)
    assert run.from_raw_files is False and run.series is None
    written = build_report(sample_copy)
    assert (sample_copy / "summary.json").read_bytes() == before  # the only copy of the data is kept
    assert written["summary"] == sample_copy / "summary.json"
    assert {"plot_ramp", "plot_time_split", "plot_waterfall", "plot_fanout"} <= set(written)
    assert not {"plot_latency", "plot_cpu", "plot_queue_depth", "plot_burst"} & set(written)
    markdown = written["markdown"].read_text(encoding="utf-8")
    assert "The raw files of this run are absent" in markdown and "schema version 1" in markdown
    assert "# scoring-bench report: run sample-quick" in markdown
    assert "| p50 at 1 user | " in markdown and "## Attribution of the gap" in markdown
    assert "## Burst: many requests at once (seed 000)" in markdown
    assert "Plots that could not be drawn" not in markdown
    original = (SAMPLE / "report.md").read_text(encoding="utf-8")
    headline = original[original.index("## Headline") : original.index("## Latency at one user")]
    rows = [line for line in headline.splitlines() if line.startswith("| ")]
    assert rows and all(row in markdown for row in rows)  # the numbers are the ones of the run's own report


def test_an_unknown_schema_version_fails_naming_it(sample_copy: Path) -> None:
    data = _sample_data()
    data["schema_version"] = 99
    (sample_copy / "summary.json").write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(SchemaVersionError, match=r"schema version 99 .*reads versions 1, 2"):
        Summary.load(sample_copy)
    with pytest.raises(SchemaVersionError, match="99"):
        build_report(sample_copy)  # nothing else to build it from: a clear refusal
    with pytest.raises(SchemaVersionError, match="99"):
        load_summary(sample_copy)
    with pytest.raises(ValidationError, match="reads versions"):
        Summary.model_validate(data)
    del data["schema_version"]
    with pytest.raises(SchemaVersionError, match="None"):
        Summary.from_json(json.dumps(data))


def test_a_renamed_or_unknown_key_fails(tmp_path: Path) -> None:
    data = _sample_data()
    one_user = data["architectures"]["sync"]["one_user"]
    one_user["median_ms"] = one_user.pop("p50_ms")
    path = tmp_path / "summary.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ValidationError, match="median_ms"):
        Summary.load(path)
    data = _sample_data()
    data["attribution"]["steps"][0]["from_"] = data["attribution"]["steps"][0].pop("from")
    with pytest.raises(ValidationError, match="from_"):
        Summary.from_json(json.dumps(data))
    with pytest.raises(ValidationError):
        ArchitectureSummary(latency={"p50_ms": 1.0})  # type: ignore[call-arg]


def test_load_summary_uses_summary_json_else_the_raw_files(run_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    assert not (copy / "summary.json").exists()
    built = load_summary(copy)  # no summary.json: built from the raw files, nothing written
    assert not (copy / "summary.json").exists() and built == build_summary(copy)
    (copy / "summary.json").write_text('{"schema_version": 7}', encoding="utf-8")
    assert load_summary(copy) == built  # unreadable, but the raw files are there
    marked = built.model_copy(update={"run_id": "from-the-file"})
    marked.write(copy)
    assert load_summary(copy).run_id == "from-the-file"


def test_compare_reads_a_v1_summary(run_dir: Path, tmp_path: Path) -> None:
    text = compare_runs(SAMPLE, run_dir, tmp_path / "cmp").read_text(encoding="utf-8")
    assert "A: sample-quick" in text and "## Attribution: the sync–async gap" in text


def test_an_unknown_environment_key_is_left_out_and_said(run_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    environment = json.loads((copy / "environment.json").read_text())
    environment["gpu"] = "none"
    environment["machine"]["numa_nodes"] = 1
    (copy / "environment.json").write_text(json.dumps(environment))
    summary = build_summary(copy)
    assert summary.environment is not None and summary.environment.machine is not None
    assert summary.environment.machine.cores == environment["machine"]["cores"]
    assert "gpu" in " ".join(summary.errors) and "machine.numa_nodes" in " ".join(summary.errors)
    assert "gpu" in build_report(copy)["markdown"].read_text(encoding="utf-8")  # said in the report


def test_series_hold_what_the_plots_need_from_the_raw_files(run_dir: Path) -> None:
    run = read_run(run_dir)
    series = run.series
    assert isinstance(series, RunSeries) and run.from_raw_files
    assert set(series.timeit_latencies) == {"sync", "async", "queue"}
    assert set(series.one_user_latencies) == {"sync", "async", "queue"}
    assert set(series.sustained_cpu) == {"sync", "async", "queue"}
    assert set(series.queue_depth) == {"one_user", "ramp", "sustained", "stress"}
    assert series.burst is not None
    assert set(series.burst.finished) == {"queue × 8", "queue × 64", "sync", "async"}
    assert set(series.burst.depth) == {"queue × 8", "queue × 64"}


def test_the_report_names_only_fields_of_the_model() -> None:
    assert set(SECTION_EXPERIMENT) <= set(ArchitectureSummary.model_fields)
