"""The attribution's batching study: its configurations, its analysis (the interpolated break-even, the
closed-loop model, missing measurements), its report section and plot, from synthetic run folders."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from benchmark.analysis.attribution import attribution_section
from benchmark.analysis.batching import (
    CROSSED,
    NEVER_PAYS,
    NO_CROSSING,
    PAYS_THROUGHOUT,
    batching_section,
    break_even,
)
from benchmark.attribution import COLUMNS, planned_measurements, studies
from benchmark.batching_sweep import BATCHING_STUDY, GRID, PER_ITEM, per_item_costs, points
from benchmark.duration import attribution_config_s
from benchmark.report.batching import (
    BATCHING_TITLE,
    batching_blocks,
    break_even_sentence,
    grid_sentences,
    grid_table,
    per_item_table,
)
from benchmark.report.blocks import Paragraph, Table, render_markdown
from benchmark.report.plots_batching import plot_batching
from benchmark.settings import BenchSettings
from benchmark.summary import Attribution, BatchingSweep, Summary

QUICK = {"bench_profile": "quick", "bench_attribution_studies": ["batching"]}
USERS = 64
# the fixture's run: async at 250 req/s everywhere; batched by configuration (step: wait, size, per-item, rps)
ASYNC_RPS, ASYNC_P50 = 250.0, 50.0
GRID_POINTS = [(1.0, 8, 1.0, 300.0), (1.0, 32, 1.0, 450.0), (5.0, 8, 1.0, 320.0), (5.0, 32, 1.0, 500.0)]
PER_ITEM_POINTS = [(5.0, 32, 0.0, 520.0), (5.0, 32, 4.0, 200.0)]  # with the grid's (5, 32, 1.0): 500


# --------------------------------------------------------------------------- configurations


def test_quick_sweeps_the_grid_then_the_per_item_costs_on_both_architectures() -> None:
    base = BenchSettings(**QUICK)
    configs = [c for c in studies(base) if c.study == BATCHING_STUDY]
    grid = [c for c in configs if c.factor == GRID]
    per_item = [c for c in configs if c.factor == PER_ITEM]
    assert [(c.meta["wait_ms"], c.meta["size"]) for c in grid] == [
        (w, s) for w in (1.0, 5.0, 20.0) for s in (8, 32)
    ]
    assert all(c.meta["per_item_ms"] == base.model_batch_per_item_ms for c in grid)
    # fractions of the mean of uniform 40–50 ms; the default 1 ms is the grid's (5, 32) point
    assert [c.overrides for c in per_item] == [{"model_batch_per_item_ms": v} for v in (0.0, 2.25, 9.0)]
    assert [c.step for c in configs] == list(range(len(configs)))
    assert all(c.architectures == ("async", "batched") for c in configs)
    assert [c.meta["run_batch"] for c in grid] == [False, False, False, True, False, False]
    assert not any(c.meta["yours_batch"] or c.meta["yours_per_item"] for c in configs)
    assert planned_measurements(base) == 2 * len(configs)


def test_the_quick_study_is_planned_within_its_budget() -> None:
    base = BenchSettings(**QUICK)
    planned = sum(attribution_config_s(base, c) for c in studies(base))
    assert 0 < planned <= 95  # the study's share of the quick profile: about 90 s


def test_smoke_measures_one_point_and_full_a_larger_grid() -> None:
    smoke = points(BenchSettings(bench_profile="smoke", bench_attribution_studies=["batching"]))
    full = points(BenchSettings(bench_profile="full", bench_attribution_studies=["batching"]))
    assert [(p.part, p.meta["wait_ms"], p.meta["size"]) for p in smoke] == [(GRID, 5.0, 32)]
    assert len([p for p in full if p.part == GRID]) > 6 and len([p for p in full if p.part == PER_ITEM]) > 3


@pytest.mark.parametrize(
    "changes",
    [
        {"bench_attribution_studies": ["fanout"]},
        {"architectures": ["sync", "async", "queue"]},
        {"architectures": ["batched"]},
        {"bench_batching_waits_ms": [], "bench_batching_per_item": []},
    ],
)
def test_no_configuration_unless_asked_for_and_both_architectures_driven(changes: dict[str, Any]) -> None:
    assert points(BenchSettings(**{**QUICK, **changes})) == []


def test_the_users_explicit_point_is_added_to_the_sweep_and_marked() -> None:
    base = BenchSettings(**QUICK, batch_max_wait_ms=3, model_batch_per_item_ms=2.25)
    sweep = points(base)
    yours = [p for p in sweep if p.meta["yours_batch"] and p.part == GRID]
    assert [(p.part, p.meta["wait_ms"], p.meta["size"]) for p in yours] == [(GRID, 3.0, 32)]
    assert yours[0].overrides == {"batch_max_wait_ms": 3.0, "batch_max_size": 32}
    # the user's per-item cost is one of the swept ones: measured once, in the grid (at the user's point)
    costs = [p.meta["per_item_ms"] for p in sweep if p.part == PER_ITEM]
    assert costs == [0.0, 9.0]
    # the per-item part runs at the user's batch settings
    assert all(p.meta["yours_batch"] and p.meta["wait_ms"] == 3.0 for p in sweep if p.part == PER_ITEM)
    assert [p.meta["yours_per_item"] for p in sweep if p.part == GRID] == [True] * 7


def test_sizes_the_model_api_refuses_are_left_out() -> None:
    base = BenchSettings(**QUICK, model_max_batch=16, batch_max_size=16)
    grid = [p for p in points(base) if p.part == GRID]
    assert {p.meta["size"] for p in grid} == {8, 16}  # not 32; 16: the user's point (wait 5 ms)
    assert [(p.meta["wait_ms"], p.meta["size"]) for p in grid if p.meta["yours_batch"]] == [(5.0, 16)]


def test_per_item_costs_scale_with_the_models_latency() -> None:
    base = BenchSettings(**QUICK, model_latency="fixed", model_latency_fixed_ms=100.0)
    assert per_item_costs(base) == [0.0, 5.0, 20.0]


def test_the_sweeps_lists_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BENCH_BATCHING_WAITS_MS", "0,2.5")
    monkeypatch.setenv("BENCH_BATCHING_SIZES", "4,16")
    monkeypatch.setenv("BENCH_BATCHING_PER_ITEM", "0.1")
    base = BenchSettings(**QUICK)
    assert (base.bench_batching_waits_ms, base.bench_batching_sizes) == ([0.0, 2.5], [4, 16])
    assert base.bench_batching_per_item == [0.1]
    assert "batching" in BenchSettings().bench_attribution_studies


# --------------------------------------------------------------------------- the break-even


def test_the_break_even_is_interpolated_where_the_ratio_falls_through_one() -> None:
    assert break_even([(4.0, 0.7), (0.0, 1.5), (2.0, 1.1)]) == (CROSSED, pytest.approx(2.5))
    # the first fall through 1 (a later rise is noise)
    assert break_even([(0, 1.2), (1, 0.8), (2, 1.05), (3, 0.5)]) == (CROSSED, pytest.approx(0.5))
    assert break_even([(0, 1.0), (1, 0.5)]) == (CROSSED, 0.0)


@pytest.mark.parametrize(
    ("points_", "status"),
    [
        ([(0, 1.5), (5, 1.2)], PAYS_THROUGHOUT),
        ([(0, 1.5)], PAYS_THROUGHOUT),
        ([(0, 0.9), (5, 0.4)], NEVER_PAYS),
        ([(0, 0.9), (5, 1.4)], NO_CROSSING),
        ([], None),
    ],
)
def test_no_break_even_within_the_range_swept(points_: list[tuple[float, float]], status: str | None) -> None:
    assert break_even(points_) == (status, None)


# --------------------------------------------------------------------------- a run folder


def _row(step: int, label: str, part: str, arch: str, rps: float | None, p50: float) -> dict[str, Any]:
    return {
        "study": BATCHING_STUDY,
        "step": step,
        "label": label,
        "factor": part,
        "arch": arch,
        "rep": 0,
        "p50_ms": p50,
        "p95_ms": p50 + 5,
        "p99_ms": p50 + 9,
        "one_user_n": 8,
        "rps": rps,
        "failure_ratio": 0.0,
        "load_users": USERS,
        "cpu_ms_per_request": 1.0 if arch == "batched" else 3.0,
    }


def make_run(root: Path, yours: bool = False, lose_step: int | None = None) -> Path:
    """attribution/measurements.csv and plan.json of a batching study: GRID_POINTS then PER_ITEM_POINTS.
    ``lose_step``: that step's batched row is missing (the run was cut short)."""
    folder = root / "attribution"
    folder.mkdir(parents=True)
    plan, rows = [], []
    entries = [(GRID, *point) for point in GRID_POINTS] + [(PER_ITEM, *point) for point in PER_ITEM_POINTS]
    for step, (part, wait, size, per_item, rps) in enumerate(entries):
        label = f"wait {wait:g} ms, size {size}" if part == GRID else f"per item {per_item:g} ms"
        run_batch = (wait, size) == (5.0, 32)
        meta = {
            "part": part,
            "wait_ms": wait,
            "size": size,
            "per_item_ms": per_item,
            "run_batch": run_batch,
            "run_per_item": per_item == 1.0,
            "yours_batch": yours and run_batch,
            "yours_per_item": False,
        }
        plan.append({"study": BATCHING_STUDY, "step": step, "label": label, "factor": part, "meta": meta})
        rows.append(_row(step, label, part, "async", ASYNC_RPS, ASYNC_P50))
        if step != lose_step:
            rows.append(_row(step, label, part, "batched", rps, ASYNC_P50 + wait + per_item + 0.5))
    (folder / "plan.json").write_text(json.dumps(plan))
    with open(folder / "measurements.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return root


@pytest.fixture
def sweep(tmp_path: Path) -> BatchingSweep:
    attribution = attribution_section(make_run(tmp_path / "run"))
    assert attribution is not None and attribution.batching is not None
    return attribution.batching


def test_the_grid_gives_each_points_cost_and_gain(sweep: BatchingSweep) -> None:
    assert [(p.wait_ms, p.max_size) for p in sweep.grid] == [(w, s) for w, s, _, _ in GRID_POINTS]
    for point, (wait, _, per_item, rps) in zip(sweep.grid, GRID_POINTS, strict=True):
        assert point.p50_cost_ms == pytest.approx(wait + per_item + 0.5)
        assert point.predicted_p50_cost_ms == pytest.approx(wait + per_item)
        assert point.throughput_ratio == pytest.approx(rps / ASYNC_RPS)
        assert point.batched is not None and point.batched.cpu_ms_per_request == 1.0
        assert point.async_ is not None and point.async_.max_rps == ASYNC_RPS
    assert sweep.load_users == USERS and sweep.missing == []


def test_the_per_item_curve_includes_the_grids_point_at_the_runs_settings(sweep: BatchingSweep) -> None:
    assert [p.per_item_ms for p in sweep.per_item] == [0.0, 1.0, 4.0]
    assert [p.throughput_ratio for p in sweep.per_item] == pytest.approx([520 / 250, 500 / 250, 200 / 250])
    assert sweep.batch_items == 32
    assert sweep.break_even == CROSSED
    # between 1 ms (×2.0) and 4 ms (×0.8): 1 + (2.0 - 1) × 3 / 1.2
    assert sweep.break_even_per_item_ms == pytest.approx(3.5)


def test_the_closed_loop_model(sweep: BatchingSweep) -> None:
    # anchored at 0 ms: 64 users at 520 req/s is 123.1 ms per request; async's 64 ÷ 250 = 256 ms
    loop_ms = USERS * 1000 / 520
    assert sweep.predicted_break_even_per_item_ms == pytest.approx((USERS * 1000 / ASYNC_RPS - loop_ms) / 32)
    for point in sweep.per_item:
        assert point.per_item_ms is not None
        expected = USERS * 1000 / (loop_ms + 32 * point.per_item_ms) / ASYNC_RPS
        assert point.predicted_ratio == pytest.approx(expected)
    assert all(p.predicted_ratio is None for p in sweep.grid if not p.run_batch)


def test_a_missing_measurement_is_listed_and_left_out(tmp_path: Path) -> None:
    attribution = attribution_section(make_run(tmp_path / "run", lose_step=5))
    assert attribution is not None and attribution.batching is not None
    sweep = attribution.batching
    assert sweep.missing == ["per item 4 ms (batched)"]
    last = sweep.per_item[-1]
    assert last.throughput_ratio is None and last.batched is None and last.async_ is not None
    assert sweep.break_even == PAYS_THROUGHOUT and sweep.break_even_per_item_ms is None
    # the study's rows are not the gap's: no architecture of the waterfall, fan-out, cpu or tail
    assert attribution.architectures == []


def test_no_study_no_section(tmp_path: Path) -> None:
    assert batching_section(tmp_path, []) is None


def test_the_summary_round_trips_with_the_sweep(sweep: BatchingSweep, tmp_path: Path) -> None:
    data = Attribution(batching=sweep).model_dump(mode="json")
    assert "async" in data["batching"]["grid"][0]
    assert Attribution.model_validate(data).batching == sweep
    assert Attribution.model_validate({}).batching is None


# --------------------------------------------------------------------------- the report


def _text(blocks: list[Any]) -> str:
    return render_markdown(blocks, Path("."))


def test_the_section_has_both_tables_and_the_computed_sentences(sweep: BatchingSweep) -> None:
    blocks = batching_blocks(sweep, {})
    text = _text(blocks)
    assert BATCHING_TITLE in text
    tables = [b for b in blocks if isinstance(b, Table)]
    assert len(tables) == 2 and len(tables[0].rows) == len(GRID_POINTS) and len(tables[1].rows) == 3
    assert "5 ms (default)" in text and "2.00×" in text
    assert "The most: BATCH_MAX_WAIT_MS=5, BATCH_MAX_SIZE=32, 2.00×" in text
    assert "Batching stops paying at about 3.50 ms per item" in text
    predicted = sweep.predicted_break_even_per_item_ms
    assert predicted is not None and f"The closed-loop model predicts {predicted:.2f} ms" in text


def test_the_users_point_is_named(tmp_path: Path) -> None:
    attribution = attribution_section(make_run(tmp_path / "run", yours=True))
    assert attribution is not None and attribution.batching is not None
    text = _text([grid_table(attribution.batching.grid)])
    assert "5 ms (yours)" in text and "(default)" not in text


def test_the_grid_sentence_when_nothing_gains(sweep: BatchingSweep) -> None:
    losing = [p.model_copy(update={"throughput_ratio": 0.8}) for p in sweep.grid]
    sentences = grid_sentences(sweep.model_copy(update={"grid": losing}))
    assert sentences[0].startswith("No point of the grid gained throughput over async at 64 users")
    nothing = [p.model_copy(update={"throughput_ratio": None}) for p in sweep.grid]
    assert grid_sentences(sweep.model_copy(update={"grid": nothing})) == [
        "No point of the grid has both throughputs: no gain to report."
    ]


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (PAYS_THROUGHOUT, "Batching still paid at the highest per-item cost swept (4 ms): the break-even"),
        (NEVER_PAYS, "Batching did not pay at any per-item cost swept, not even at 0 ms"),
        (NO_CROSSING, "does not fall through 1"),
        (None, "Too few measurements for a break-even."),
    ],
)
def test_the_break_even_sentence_says_when_it_is_not_within_the_range(
    sweep: BatchingSweep, status: str | None, expected: str
) -> None:
    other = sweep.model_copy(update={"break_even": status, "break_even_per_item_ms": None})
    assert expected in break_even_sentence(other)


def test_a_negative_prediction_is_explained(sweep: BatchingSweep) -> None:
    other = sweep.model_copy(update={"predicted_break_even_per_item_ms": -1.5})
    assert "below zero" in break_even_sentence(other)


def test_missing_measurements_are_warned_about_and_shown_as_dashes(tmp_path: Path) -> None:
    attribution = attribution_section(make_run(tmp_path / "run", lose_step=5))
    assert attribution is not None and attribution.batching is not None
    blocks = batching_blocks(attribution.batching, {})
    assert any(isinstance(b, Paragraph) and "Not measured: per item 4 ms (batched)" in b.text for b in blocks)
    last = per_item_table(attribution.batching).rows[-1]
    assert last[4] == "—"


def test_nothing_when_the_study_did_not_run() -> None:
    assert batching_blocks(None, {}) == []


def test_the_plot_and_the_report_of_a_run(tmp_path: Path, sweep: BatchingSweep) -> None:
    path = plot_batching(Attribution(batching=sweep), tmp_path / "plots")
    assert path is not None and path.stat().st_size > 0
    assert plot_batching(Attribution(), tmp_path / "none") is None
    assert plot_batching(None, tmp_path / "none") is None
    summary = Summary(run_id="r", attribution=Attribution(batching=sweep))
    from benchmark.report import report_blocks

    text = _text(report_blocks(summary, {"batching": path}))
    assert BATCHING_TITLE in text and "attribution_batching.png" in text


def test_the_batch_size_batcheds_throughputs_imply(sweep: BatchingSweep) -> None:
    # from 0 ms (520 req/s) to 4 ms (200 req/s): 64 users' time per request grew 320 − 123.1 ms over 4 ms
    expected = (USERS * 1000 / 200 - USERS * 1000 / 520) / 4
    assert sweep.implied_batch_items == pytest.approx(expected)
    text = break_even_sentence(sweep)
    assert f"as batches of {expected:.1f} items would" in text and "every batch as full (32 items)" in text
    lone = sweep.model_copy(update={"implied_batch_items": None})
    assert "items would" not in break_even_sentence(lone)
