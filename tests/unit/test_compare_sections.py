"""`scoring-bench compare`: the queue's waterfall and the minimal control, run A beside run B."""

from __future__ import annotations

from benchmark.report.blocks import Heading, Paragraph, Table
from benchmark.report.compare import comparison_blocks, control_blocks, queue_blocks
from benchmark.summary import Attribution, Control, Level, QueueWaterfall, Summary


def _queue(tuned_p50: float, tuned_rps: float, tuned_cpu: float) -> QueueWaterfall:
    return QueueWaterfall(
        baseline=Level(step=0, p50_ms=102.9, max_rps=20.0, cpu_ms_per_request=54.0),
        tuned=Level(step=9, p50_ms=tuned_p50, max_rps=tuned_rps, cpu_ms_per_request=tuned_cpu),
        ideal_p50_ms=47.1,
        ideal_gap_tuned_ms=round(tuned_p50 - 47.1, 1),
    )


def _rows(blocks: list) -> dict[str, list[str]]:
    tables = [block for block in blocks if isinstance(block, Table)]
    assert len(tables) == 1
    return {row[0]: row[1:] for row in tables[0].rows}


def test_the_queue_waterfalls_ends_side_by_side_with_verdicts() -> None:
    a = Summary(run_id="a", attribution=Attribution(queue=_queue(54.1, 266.0, 6.0)))
    b = Summary(run_id="b", attribution=Attribution(queue=_queue(50.0, 300.0, 5.0)))
    blocks = queue_blocks(a, b)
    assert blocks[0] == Heading(2, "Attribution: the queue's waterfall")
    rows = _rows(blocks)
    assert rows["tuned: p50 at 1 user"] == ["54.1 ms", "50.0 ms", "-7.6%", "better"]
    assert rows["tuned: tasks/s"][-1] == "better"  # more tasks a second is better
    assert rows["tuned: server CPU per task"] == ["6.00 ms", "5.00 ms", "-16.7%", "better"]
    assert rows["seed-faithful: p50 at 1 user"][-1] == "same"
    assert (
        rows["ideal p50 (tuned model calls)"][-1] == "–"
        or rows["ideal p50 (tuned model calls)"][-1] == "same"
    )
    worse = queue_blocks(b, a)
    assert _rows(worse)["tuned: tasks/s"][-1] == "worse"


def test_a_run_without_the_part_says_so_and_none_without_both() -> None:
    with_queue = Summary(run_id="a", attribution=Attribution(queue=_queue(54.1, 266.0, 6.0)))
    without = Summary(run_id="b")
    blocks = queue_blocks(with_queue, without)
    assert any(
        isinstance(block, Paragraph) and "Run B has no queue waterfall" in block.text for block in blocks
    )
    assert queue_blocks(without, without) == []
    assert control_blocks(without, without) == []
    headings = [block.text for block in comparison_blocks(without, without) if isinstance(block, Heading)]
    assert "The async handler against the minimal control" not in headings


def test_the_control_ratio_and_p50_difference_side_by_side() -> None:
    a = Summary(run_id="a", control=Control(ratio_median=0.96, p50_diff_ms=0.16, product_cpu_ms=1.2))
    b = Summary(run_id="b", control=Control(ratio_median=1.02, p50_diff_ms=0.30, product_cpu_ms=1.1))
    rows = _rows(control_blocks(a, b))
    assert rows["throughput ÷ the control's (median of the repetitions)"] == [
        "0.96×",
        "1.02×",
        "+6.3%",
        "better",
    ]
    assert rows["p50 at 1 user − the control's"][-1] == "worse"
    assert rows["the handler's CPU per request"][-1] == "better"
    assert "the control's CPU per request" not in rows  # neither run measured it
