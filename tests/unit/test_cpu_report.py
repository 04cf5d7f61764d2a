"""The report's cpu-bound section (issue 17 §2): what it measured, a row per configuration with what its sides
differ in (computed from the recorded settings), and a verdict only where the model APIs ran on equal
processes."""

from __future__ import annotations

from benchmark.analysis.differs import ARCHITECTURE_CONSEQUENCES, comparison_differs
from benchmark.report.attribution import _cpu_blocks, cpu_rows, cpu_sentences
from benchmark.report.blocks import Paragraph, Table
from benchmark.summary import Attribution, StudyEntry
from scoring_bench.core.settings import Settings


def entries(step: int, label: str, settings: Settings, sync_rps: float, async_rps: float) -> list[StudyEntry]:
    differs = comparison_differs(settings, "sync", settings, "async", allowed=ARCHITECTURE_CONSEQUENCES)
    common = {"step": step, "label": label, "num_models": settings.num_models, "model_kind": "cpu"}
    return [
        StudyEntry(architecture="sync", rps=sync_rps, p50_ms=95.0, ideal_p50_ms=90.0, **common),
        StudyEntry(
            architecture="async", rps=async_rps, p50_ms=94.0, ideal_p50_ms=45.0, differs=differs, **common
        ),
    ]


EQUAL_MODELS = Settings(model_kind="cpu", model_sync_workers=2, model_async_workers=2)
EQUAL_BOTH = EQUAL_MODELS.model_copy(update={"scoring_async_workers": EQUAL_MODELS.scoring_sync_workers})
UNEQUAL = Settings(model_kind="cpu", model_sync_workers=2, model_async_workers=1)


def attribution(*configs: list[StudyEntry]) -> Attribution:
    flat = [entry for config in configs for entry in config]
    return Attribution(architectures=["sync", "async"], load_users=64, cpu_configs=flat)


def test_a_row_per_configuration_with_what_its_sides_differ_in() -> None:
    section = attribution(
        entries(0, "equal model API processes", EQUAL_MODELS, 19.4, 18.9),
        entries(1, "equal model API and scoring processes", EQUAL_BOTH, 19.5, 19.2),
    )
    blocks = _cpu_blocks(section)
    tables = [block for block in blocks if isinstance(block, Table)]
    assert len(tables) == 1
    first, second = tables[0].rows
    assert first[:2] == ["1", "equal model API processes"]
    assert "scoring processes 2 vs 1" in first[2] and "model API processes" not in first[2]
    assert second[2] == "architecture sync vs async"  # nothing else differs
    assert (second[3], second[4], second[5]) == ("19.5 req/s", "19.2 req/s", "0.98×")
    text = " ".join(block.text for block in blocks if isinstance(block, Paragraph))
    assert "Row 1 runs both model APIs on the same number of processes" in text
    assert "Row 1: async 18.9 req/s against sync's 19.4 req/s" in text
    assert "async does not help when the work is CPU" in text and "⚠" not in text


def test_unequal_model_processes_get_no_verdict_about_cpu_work() -> None:
    """The previous study (2 sync against 1 async model API process): the ratio is flagged, not read as
    "async does not help"."""
    rows = cpu_rows(attribution(entries(0, "cpu-bound model", UNEQUAL, 19.5, 10.5)))
    text = " ".join(cpu_sentences(rows))
    assert "with 2 sync and 1 async model API processes" in text
    assert "async served 0.5× the sync throughput" in text
    assert "⚠ The model APIs ran on different numbers of processes" in text
    blocks = _cpu_blocks(attribution(entries(0, "x", UNEQUAL, 19.5, 10.5)))
    table = next(block for block in blocks if isinstance(block, Table))
    assert "model API processes 2 vs 1" in table.rows[0][2] and "⚠ confounded" in table.rows[0][2]


def test_the_verdict_follows_the_numbers() -> None:
    rows = cpu_rows(attribution(entries(1, "equal", EQUAL_BOTH, 10.0, 30.0)))
    assert "async served 3.0× the sync throughput" in " ".join(cpu_sentences(rows))


def test_a_summary_without_cpu_configs_reads_its_one_configuration() -> None:
    one = {entry.architecture: entry for entry in entries(0, "cpu-bound model", UNEQUAL, 19.5, 10.5)}
    rows = cpu_rows(Attribution(architectures=["sync", "async"], cpu=one))
    assert [(label, sync and sync.rps, other and other.rps) for label, sync, other in rows] == [
        ("cpu-bound model", 19.5, 10.5)
    ]


def test_not_run_and_one_architecture() -> None:
    assert _cpu_blocks(Attribution()) == [Paragraph("The cpu-bound study did not run.")]
    sync_only = [entry for entry in entries(0, "x", EQUAL_BOTH, 1.0, 1.0) if entry.architecture == "sync"]
    assert cpu_sentences(cpu_rows(attribution(sync_only))) == [
        "The cpu-bound model was not measured for both architectures."
    ]
