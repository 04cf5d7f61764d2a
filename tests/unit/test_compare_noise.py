"""`scoring-bench compare`: a difference within the runs' spread is "within noise" (pyperf's rule of
thumb for two sets of repetitions: overlapping ranges cannot be told apart)."""

from __future__ import annotations

from benchmark.report.compare import metrics_table, within_noise
from benchmark.summary import ArchitectureSummary, OneUser, Repeated, Repeats, Summary, Sustained


def _r(*values: float) -> Repeated:
    ordered = sorted(values)
    return Repeated(
        values=list(values), median=ordered[len(values) // 2], min=ordered[0], max=ordered[-1], n=len(values)
    )


def summary_with(run_id: str, sustained: Repeated, p50: Repeated) -> Summary:
    arch = ArchitectureSummary(
        one_user=OneUser(p50_ms=p50.values[0]),
        sustained=Sustained(users=64, rps=sustained.values[0]),
        repeats=Repeats(one_user_p50_ms=p50, sustained_rps=sustained),
    )
    return Summary(run_id=run_id, architectures={"async": arch})


def test_overlapping_ranges_are_within_noise() -> None:
    assert within_noise(_r(690, 745, 781), _r(770, 800, 820))
    assert not within_noise(_r(690, 745, 781), _r(790, 800, 820))
    assert within_noise(_r(1.0, 1.0, 1.0), _r(1.0, 1.1, 1.2))


def test_compare_judges_the_medians_with_their_spread() -> None:
    a = summary_with("a", sustained=_r(690, 745, 781), p50=_r(49.0, 49.5, 50.0))
    b = summary_with("b", sustained=_r(790, 800, 820), p50=_r(49.4, 49.6, 50.1))
    rows = {row[1]: row for row in metrics_table(a, b).rows if row[0] == "async"}
    throughput = rows["sustained phase throughput"]
    assert throughput[2] == "745.0 req/s (690.0–781.0, n=3)" and throughput[3].startswith("800.0 req/s")
    assert throughput[5] == "better"  # the ranges are apart
    assert rows["p50 at 1 user"][5] == "within noise"
