"""The attribution section of the summary, its plots and its report, on a synthetic run folder."""

from __future__ import annotations

import base64
import csv
import json
import math
import shutil
from pathlib import Path

import pytest

from benchmark.analysis import build_summary
from benchmark.analysis.raw import recorded_settings
from benchmark.ideal import ideal_latency_ms
from benchmark.report import build_report, compare_runs, report_blocks
from benchmark.report.attribution import (
    attribution_blocks,
    cpu_rows,
    cpu_sentences,
    gap_sentences,
    tail_sentence,
)
from benchmark.report.blocks import render_markdown
from benchmark.report.plots_attribution import plot_fanout, plot_waterfall
from benchmark.summary import Attribution, GapFactor, Summary, WaterfallStep
from tests.fixtures.run_folder import (
    ARCHITECTURES,
    CPU_RPS,
    FANOUT,
    P50_OFFSETS_MS,
    REPS,
    RPS_OFFSETS,
    TAIL_P99_MS,
    WATERFALL_P50_MS,
    WATERFALL_RPS,
    make_run_folder,
)

LAST = len(WATERFALL_P50_MS["sync"]) - 1


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_run_folder(tmp_path_factory.mktemp("results") / "20261201-100000", attribution=True)


@pytest.fixture(scope="module")
def written(run_dir: Path) -> dict[str, Path]:
    return build_report(run_dir)


@pytest.fixture(scope="module")
def attribution(written: dict[str, Path]) -> Attribution:
    attribution = Summary.load(written["summary"]).attribution
    assert attribution is not None
    return attribution


def _step(attribution: Attribution, step: int, arch: str) -> WaterfallStep:
    return next(s for s in attribution.steps if s.step == step and s.architecture == arch)


def _factors(attribution: Attribution) -> list[GapFactor]:
    assert attribution.gap is not None
    return attribution.gap.factors


def _gap(step: int) -> tuple[float, float]:
    """The fixture's latency gap (sync − async p50) and throughput difference (async − sync) at a step."""
    return (
        WATERFALL_P50_MS["sync"][step] - WATERFALL_P50_MS["async"][step],
        WATERFALL_RPS["async"][step] - WATERFALL_RPS["sync"][step],
    )


def test_at_least_four_factors_with_finite_effects(attribution: Attribution) -> None:
    factors = _factors(attribution)
    assert len(factors) >= 4 and len({f.factor for f in factors}) == len(factors)
    for factor in factors:
        assert all(
            value is not None and math.isfinite(value)
            for value in (factor.gap_change_p50_ms, factor.gap_change_rps)
        )
        assert factor.from_ and factor.to and factor.from_ != factor.to
    steps = attribution.steps
    assert len(steps) == LAST * len(ARCHITECTURES)
    assert all(
        s.delta_p50_ms is not None
        and math.isfinite(s.delta_p50_ms)
        and s.delta_rps is not None
        and math.isfinite(s.delta_rps)
        for s in steps
    )


def test_step_means_deltas_and_spreads_are_the_fixtures(attribution: Attribution) -> None:
    assert attribution.baseline is not None and attribution.tuned is not None
    for arch in ARCHITECTURES:
        p50, rps = WATERFALL_P50_MS[arch], WATERFALL_RPS[arch]
        for step in range(1, LAST + 1):
            entry = _step(attribution, step, arch)
            assert entry.p50_ms == pytest.approx(p50[step])
            assert entry.delta_p50_ms == pytest.approx(p50[step] - p50[step - 1])
            assert entry.max_rps == pytest.approx(rps[step])
            assert entry.delta_rps == pytest.approx(rps[step] - rps[step - 1])
            spread, rps_spread = entry.spread.p50_ms, entry.spread.max_rps
            assert spread is not None and rps_spread is not None
            assert spread.n == REPS
            assert spread.min == pytest.approx(p50[step] + min(P50_OFFSETS_MS))
            assert spread.max == pytest.approx(p50[step] + max(P50_OFFSETS_MS))
            assert rps_spread.max == pytest.approx(rps[step] + max(RPS_OFFSETS))
        assert attribution.baseline[arch].p50_ms == pytest.approx(p50[0])
        assert attribution.tuned[arch].max_rps == pytest.approx(rps[LAST])
    # a change no larger than the repetitions' range is noise: sync's p50 does not move at step 3
    assert _step(attribution, 3, "sync").within_noise.p50_ms is True
    assert _step(attribution, 1, "sync").within_noise.p50_ms is False


def test_gap_and_shares(attribution: Attribution) -> None:
    gap = attribution.gap
    assert gap is not None and gap.seed_faithful is not None and gap.tuned is not None
    assert gap.seed_faithful.latency_gap_ms == pytest.approx(_gap(0)[0])
    assert gap.tuned.latency_gap_ms == pytest.approx(_gap(LAST)[0])
    ratio = WATERFALL_RPS["async"][LAST] / WATERFALL_RPS["sync"][LAST]
    assert gap.tuned.throughput_ratio == pytest.approx(ratio)
    assert gap.total_change_p50_ms == pytest.approx(_gap(LAST)[0] - _gap(0)[0])
    for factor in gap.factors:
        step = factor.step
        assert factor.gap_change_p50_ms == pytest.approx(_gap(step)[0] - _gap(step - 1)[0])
        assert factor.gap_change_rps == pytest.approx(_gap(step)[1] - _gap(step - 1)[1])
    assert gap.total_change_p50_ms != pytest.approx(0) and gap.total_change_rps != pytest.approx(0)
    for shares in ([f.share_p50 for f in gap.factors], [f.share_rps for f in gap.factors]):
        assert sum(share or 0.0 for share in shares) == pytest.approx(1.0) and None not in shares
    assert any((f.share_rps or 0.0) < 0 for f in gap.factors)  # a factor may move the gap the other way


def test_fanout_ideals_are_ideal_latency_ms_of_the_recorded_settings(
    run_dir: Path, attribution: Attribution
) -> None:
    recorded = recorded_settings(json.loads((run_dir / "environment.json").read_text()))
    assert recorded is not None
    entries = attribution.fanout
    assert sorted({n for e in entries if (n := e.num_models) is not None}) == list(FANOUT)
    assert len(entries) == 2 * len(FANOUT)
    for entry in entries:
        settings = recorded.model_copy(update={"num_models": entry.num_models})
        ideal = ideal_latency_ms(settings, concurrent=entry.architecture != "sync")
        assert (entry.ideal_p50_ms, entry.ideal_p99_ms) == pytest.approx((ideal.p50_ms, ideal.p99_ms))
        assert entry.ideal_mean_ms == pytest.approx(ideal.mean_ms)


def test_cpu_and_tail_ideals_follow_their_own_settings(attribution: Attribution, run_dir: Path) -> None:
    recorded = recorded_settings(json.loads((run_dir / "environment.json").read_text()))
    assert recorded is not None and attribution.tail is not None and attribution.cpu is not None
    tail = recorded.model_copy(update={"model_latency": "lognormal", "num_models": 4})
    for arch in ARCHITECTURES:
        entry = attribution.tail[arch]
        assert (entry.model_latency, entry.num_models) == ("lognormal", 4)
        ideal = ideal_latency_ms(tail, concurrent=arch != "sync")
        assert entry.ideal_p99_ms == pytest.approx(ideal.p99_ms)
        assert entry.p99_ms == pytest.approx(TAIL_P99_MS[arch])
        assert attribution.cpu[arch].model_kind == "cpu"
        assert attribution.cpu[arch].rps == pytest.approx(CPU_RPS[arch])
    sync_p99, async_p99 = attribution.tail["sync"].ideal_p99_ms, attribution.tail["async"].ideal_p99_ms
    assert sync_p99 is not None and async_p99 is not None and sync_p99 > async_p99


def test_without_config_json_the_ideal_comes_from_the_recorded_settings_and_the_plan(
    run_dir: Path, attribution: Attribution, tmp_path: Path
) -> None:
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    for config in (copy / "attribution").rglob("config.json"):
        config.unlink()
    rebuilt = build_summary(copy).attribution
    assert rebuilt is not None and rebuilt.tail is not None and attribution.tail is not None
    ideals = [e.ideal_p50_ms for e in attribution.fanout]
    assert [e.ideal_p50_ms for e in rebuilt.fanout] == pytest.approx(ideals)
    for arch in ARCHITECTURES:
        expected = attribution.tail[arch].ideal_p99_ms
        assert rebuilt.tail[arch].ideal_p99_ms == pytest.approx(expected)


def test_report_has_the_attribution_section_and_embeds_both_plots(written: dict[str, Path]) -> None:
    assert {"plot_waterfall", "plot_fanout"} <= set(written)
    markdown = written["markdown"].read_text(encoding="utf-8")
    section = markdown[markdown.index("## Attribution of the gap") : markdown.index("## Plots")]
    assert "plots/attribution_waterfall.png" in section and "plots/attribution_fanout.png" in section
    assert "| HTTP client lifetime | client per request → client per process |" in section
    assert "At seed-faithful settings async was 50.0 ms faster than sync" in section
    assert "7.9× the sync throughput" in section
    assert "HTTP client lifetime (client per request → client per process) alone accounts for 83%" in section
    assert "that is what concurrency itself buys on this machine" in section
    assert "async does not help when the work is CPU" in section
    assert "With 8 model calls per request, sync takes 364.8 ms against an ideal sum of" in section
    page = written["html"].read_text(encoding="utf-8")
    assert "<h2>Attribution of the gap</h2>" in page and "<h3>A long tail</h3>" in page
    for name in ("plot_waterfall", "plot_fanout"):
        assert base64.b64encode(written[name].read_bytes()).decode("ascii") in page


def test_sentences_follow_the_numbers_not_a_script(attribution: Attribution) -> None:
    assert attribution.gap is not None and attribution.gap.tuned is not None
    assert attribution.cpu is not None and attribution.tail is not None
    tuned = attribution.gap.tuned.model_copy(update={"latency_gap_ms": -3.0, "throughput_ratio": 0.8})
    gap = attribution.gap.model_copy(update={"tuned": tuned})  # async slower and serving less
    summary = Summary(run_id="r", attribution=attribution.model_copy(update={"gap": gap}))
    text = " ".join(gap_sentences(summary))
    assert "async is 3.0 ms slower than sync" in text and "less than sync: 0.8×" in text
    assert "concurrency itself buys nothing" in text
    label, sync, other = cpu_rows(attribution)[-1]
    assert sync is not None and other is not None
    faster = other.model_copy(update={"rps": 3 * (sync.rps or 0.0)})
    assert "async served 3.0× the sync throughput" in " ".join(cpu_sentences([(label, sync, faster)]))
    tail = dict(attribution.tail)
    tail["async"] = tail["async"].model_copy(update={"p99_ms": (tail["sync"].p99_ms or 0.0) + 10})
    assert "did not cut the p99" in tail_sentence(tail)


def test_an_interrupted_attribution_still_reports(run_dir: Path, tmp_path: Path) -> None:
    """Interrupted after waterfall step 2: what was measured is reported, the rest is named as missing."""
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    path = copy / "attribution" / "measurements.csv"
    with path.open(newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["study"] == "waterfall" and int(row["step"]) < 3]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    summary = build_summary(copy)
    attribution = summary.attribution
    assert attribution is not None and attribution.gap is not None
    assert attribution.tuned is None and attribution.gap.tuned is None
    assert attribution.fanout == [] and attribution.cpu is None
    assert {"waterfall: + sync servers", "tail: lognormal latency, 4 models"} <= set(attribution.missing)
    assert plot_fanout(attribution, copy / "plots") is None
    markdown = render_markdown(report_blocks(summary, {}), copy)
    assert "The tuned step was not measured for both architectures." in markdown
    assert "The fan-out study did not run." in markdown and "fanout: 8 models" in markdown


def test_no_attribution_no_section_and_no_plots(tmp_path: Path) -> None:
    summary = Summary(run_id="r", attribution=None, experiments=["timeit"])
    assert plot_waterfall(summary.attribution, tmp_path) is None
    assert plot_fanout(summary.attribution, tmp_path) is None
    assert attribution_blocks(summary, {}) == []
    attribution_run = summary.model_copy(update={"experiments": ["attribution"]})
    assert "left no measurements" in str(attribution_blocks(attribution_run, {}))


def test_compare_sets_the_gaps_side_by_side(run_dir: Path, tmp_path: Path) -> None:
    other = tmp_path / "b"
    shutil.copytree(run_dir, other, ignore=shutil.ignore_patterns("plots", "report.*", "summary.json"))
    text = compare_runs(run_dir, other, tmp_path / "cmp").read_text(encoding="utf-8")
    assert "## Attribution: the sync–async gap" in text
    assert f"| tuned: latency gap (sync − async p50) | {_gap(LAST)[0]:.1f} ms |" in text
    shutil.rmtree(other / "attribution")
    text = compare_runs(run_dir, other, tmp_path / "cmp2").read_text(encoding="utf-8")
    assert "Run B has no attribution of the gap" in text
