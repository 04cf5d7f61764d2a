"""What differs under every comparison (issue 17): the diffs in summary.json computed from the recorded
settings of each side (benchmark/analysis/comparison.py, benchmark/analysis/study_differs.py), the flag of a
confounded study and the per-core figures in the report (benchmark/report/differs.py, per_core.py)."""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path

import pytest

from benchmark.analysis import build_summary
from benchmark.analysis.comparison import headline_differs
from benchmark.analysis.measurements import Measurement
from benchmark.analysis.servers import servers_section
from benchmark.analysis.study_differs import StepConfig, step_differs, with_differs
from benchmark.attribution_servers import FASTAPI_GRANIAN, FASTAPI_UVICORN, FLASK_GEVENT, FLASK_GTHREAD
from benchmark.report import build_report, report_blocks
from benchmark.report.attribution_differs import OLDER_SUMMARY
from benchmark.report.blocks import render_markdown
from benchmark.report.compare import side_differences
from benchmark.report.differs import burst_differs, differs_text, flag
from benchmark.summary import Attribution, Burst, BurstRun, Summary
from scoring_bench.core.settings import Settings
from tests.fixtures.run_folder import SERVICE_CPU, make_run_folder


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_run_folder(
        tmp_path_factory.mktemp("differs") / "run", attribution=True, queue=True, batched=True
    )


@pytest.fixture(scope="module")
def summary(run: Path) -> Summary:
    return build_summary(run)


def _line(summary: Summary, a: str, b: str) -> str:
    found = headline_differs(summary.architectures, Settings())
    assert found is not None
    return next(d.line for d in found if (d.a, d.b) == (a, b))


# --------------------------------------------------------------------------- the summary


def test_headline_comparisons_are_each_architecture_against_sync_then_batched_against_async(
    summary: Summary,
) -> None:
    found = headline_differs(summary.architectures, Settings())
    assert found is not None
    assert [(d.a, d.b) for d in found] == [
        ("sync", "async"),
        ("sync", "batched"),
        ("sync", "queue"),
        ("batched", "async"),
    ]
    assert _line(summary, "sync", "async") == (
        "differs: architecture sync vs async; scoring processes 2 vs 1; model API processes 2 vs 1"
    )
    assert all(d.allowed is None and not d.confounds for d in found)  # shown, not judged
    assert headline_differs(summary.architectures, None) is None
    batched = summary.comparison.batched_vs_async
    assert batched is not None and batched.differs is not None
    assert batched.differs.line == "differs: architecture batched vs async"


def test_waterfall_steps_and_the_gap_carry_the_diff_of_their_recorded_settings(summary: Summary) -> None:
    attribution = summary.attribution
    assert attribution is not None and attribution.gap is not None
    for step in attribution.steps:
        assert step.differs is not None, step
        assert not step.differs.confounds  # a step changes only what it declares
    uvicorn = next(
        s for s in attribution.steps if s.factor == "uvicorn workers" and s.architecture == "async"
    )
    assert uvicorn.differs is not None and "scoring processes" in uvicorn.differs.line
    sync_step = next(
        s for s in attribution.steps if s.factor == "uvicorn workers" and s.architecture == "sync"
    )
    assert sync_step.differs is not None and sync_step.differs.line == "differs: nothing"
    tuned = attribution.gap.tuned
    assert tuned is not None and tuned.differs is not None
    assert tuned.differs.line == _line(summary, "sync", "async")  # the tuned stack is the run's own
    # each architecture at its own process counts: declared by the study (plan.json), so not a confound
    assert not tuned.differs.confounds
    assert all(factor.differs is not None for factor in attribution.gap.factors)


def test_fanout_against_sync_and_against_the_previous_number_of_models(summary: Summary) -> None:
    attribution = summary.attribution
    assert attribution is not None
    entries = [entry for entry in attribution.fanout if entry.architecture == "async"]
    assert all(
        entry.differs is not None and "architecture sync vs async" in entry.differs.line for entry in entries
    )
    later = [entry.differs_previous for entry in entries[1:]]
    assert [d.line if d else None for d in later] == [
        f"differs: models per request {a.num_models} vs {b.num_models}" for a, b in pairwise(entries)
    ]
    assert entries[0].differs_previous is None
    assert all(entry.differs is None for entry in attribution.fanout if entry.architecture == "sync")


def test_cpu_study_configurations_are_each_judged_against_sync(summary: Summary) -> None:
    attribution = summary.attribution
    assert attribution is not None and attribution.cpu_configs
    judged = [entry.differs for entry in attribution.cpu_configs if entry.architecture == "async"]
    assert judged and all(d is not None and not d.confounds for d in judged)
    assert all(d is not None and "model API processes" not in d.line for d in judged)  # equal model APIs


def test_sustained_per_core_and_per_process(summary: Summary) -> None:
    for arch, data in summary.architectures.items():
        sustained = data.sustained
        assert sustained is not None and sustained.rps and sustained.server_cpu_ms_per_request
        assert sustained.cores_used == pytest.approx(sum(SERVICE_CPU[arch].values()) / 100, rel=0.05)
        assert sustained.rps_per_core == pytest.approx(1000 / sustained.server_cpu_ms_per_request, rel=1e-3)
        assert sustained.scoring_processes == (2 if arch == "sync" else 1)
        assert sustained.rps_per_scoring_process == pytest.approx(sustained.rps / sustained.scoring_processes)


def test_the_summary_with_its_diffs_reads_back(summary: Summary) -> None:
    again = Summary.from_json(summary.to_json())
    assert again == summary


# --------------------------------------------------------------------------- confounds


def test_a_study_without_declared_consequences_is_flagged(run: Path, tmp_path: Path) -> None:
    """plan.json from before the declarations: sync vs async at unequal process counts is a confound."""
    plan_path = run / "attribution" / "plan.json"
    plan = json.loads(plan_path.read_text())
    old = [{k: v for k, v in entry.items() if k not in ("varies", "consequences")} for entry in plan]
    copy = tmp_path / "run"
    make_run_folder(copy, attribution=True)
    (copy / "attribution" / "plan.json").write_text(json.dumps(old))
    attribution = build_summary(copy).attribution
    assert attribution is not None and attribution.tail is not None
    tail = attribution.tail["async"].differs
    assert tail is not None
    assert [d.name for d in tail.confounds] == ["scoring processes", "model API processes"]
    assert flag(tail) == (
        "⚠ confounded: scoring processes 2 vs 1; model API processes 2 vs 1 — not the factor of this study "
        "(architecture)"
    )
    markdown = (Path(build_report(copy)["markdown"])).read_text()
    assert "⚠ confounded: scoring processes 2 vs 1" in markdown


def test_a_step_that_changes_more_than_it_declares_is_flagged() -> None:
    before = StepConfig(Settings(), {}, varies=frozenset())
    after = StepConfig(
        Settings(num_models=4, model_async_workers=2), {"num_models": 4}, varies=frozenset({"num_models"})
    )
    differs = step_differs(lambda study, step: [before, after][step], "fanout", 0, 1, "async", "models")
    assert differs is not None
    assert [d.name for d in differs.settings] == ["model API processes", "models per request"]
    assert [(d.name, d.a, d.b) for d in differs.confounds] == [("model API processes", "1", "2")]
    text = differs_text(differs)
    assert text is not None and text.endswith(
        "⚠ confounded: model API processes 1 vs 2 — not the factor of this study (models)"
    )


def test_without_declarations_a_step_is_judged_by_what_its_overrides_switch() -> None:
    before = StepConfig(Settings(), {"num_models": 2})
    after = StepConfig(Settings(num_models=4), {"num_models": 4})
    differs = step_differs(lambda study, step: [before, after][step], "fanout", 0, 1, "sync", "models")
    assert differs is not None and differs.allowed == ["models per request"] and not differs.confounds


def _servers_rows() -> list[Measurement]:
    rows = []
    for step, server in enumerate((FLASK_GTHREAD, FASTAPI_UVICORN, FLASK_GEVENT, FASTAPI_GRANIAN)):
        rows.append(
            Measurement(
                study="servers", step=step, label=server.label, factor="", before="", after="",
                arch=server.architecture, rep=0, p50_ms=50.0, p95_ms=55.0, p99_ms=60.0, rps=100.0,
                failure_ratio=0.0, load_users=64, num_models=2, model_kind="io", model_latency="uniform",
            )
        )  # fmt: skip
    return rows


def test_servers_configurations_against_their_reference() -> None:
    rows = _servers_rows()
    servers = servers_section(rows)
    assert servers is not None
    settings = {
        0: Settings(),
        1: Settings(),
        2: Settings(scoring_sync_worker_class="gevent"),
        3: Settings(scoring_async_server="granian"),
    }
    consequences = frozenset({"scoring processes", "model API processes"})

    def configs(study: str, step: int) -> StepConfig:
        return StepConfig(settings[step], {}, consequences=consequences)

    attribution = with_differs(Attribution(servers=servers), configs, {row.label: row.step for row in rows})
    assert attribution.servers is not None
    by_label = {level.label: level.differs for level in attribution.servers.servers}
    assert by_label[FLASK_GTHREAD.label] is None  # the reference
    gevent = by_label[FLASK_GEVENT.label]
    assert gevent is not None and gevent.factor == "server" and not gevent.confounds
    assert gevent.line == (
        "differs: scoring server gunicorn gthread vs gunicorn gevent; "
        "concurrency per scoring process 64 threads vs 64 greenlets"
    )
    uvicorn = by_label[FASTAPI_UVICORN.label]
    assert uvicorn is not None and uvicorn.factor == "architecture" and not uvicorn.confounds
    assert by_label[FASTAPI_GRANIAN.label] is None  # its pair (Flask on granian) was not measured


# --------------------------------------------------------------------------- the report


def test_report_prints_every_comparisons_diff_and_the_per_core_figures(run: Path) -> None:
    markdown = Path(build_report(run)["markdown"]).read_text()
    assert "- sync vs async — differs: architecture sync vs async; scoring processes 2 vs 1" in markdown
    assert "Each architecture runs at its own tuned default" in markdown
    assert "| req/s per core used |" in markdown.replace("|   req/s", "| req/s")
    assert "req/s per scoring process" in markdown
    assert "async against sync: " in markdown and "× per core used" in markdown
    assert "step 1 (+ HTTP client lifetime): sync and async — differs: HTTP client lifetime" in markdown
    assert "the gap (sync vs async) at " in markdown
    assert "against the number before, sync and async — differs: models per request" in markdown
    assert "What differs in the long-tail study:" in markdown
    assert "What differs between the bursts" in markdown
    assert "confounded" not in markdown  # every difference is declared by its study


def test_an_old_summary_without_diffs_gets_them_from_its_recorded_settings(summary: Summary) -> None:
    old = summary.model_copy(update={"comparison": summary.comparison.model_copy(update={"differs": None})})
    markdown = render_markdown(report_blocks(old, {}), Path("."))
    assert "- sync vs queue — differs: architecture sync vs queue; scoring processes 2 vs 1" in markdown
    attribution = summary.attribution
    assert attribution is not None
    steps = [step.model_copy(update={"differs": None}) for step in attribution.steps]
    older = old.model_copy(update={"attribution": attribution.model_copy(update={"steps": steps})})
    assert OLDER_SUMMARY in render_markdown(report_blocks(older, {}), Path("."))
    assert OLDER_SUMMARY not in markdown
    no_settings = old.model_copy(update={"environment": None})
    assert "What differs between the architectures" not in render_markdown(
        report_blocks(no_settings, {}), Path(".")
    )


def test_burst_diffs_come_from_the_run_settings() -> None:
    burst = Burst(
        tasks=100,
        runs=[
            BurstRun(architecture="queue", concurrency=8),
            BurstRun(architecture="queue", concurrency=64),
            BurstRun(architecture="async"),
        ],
    )
    found = burst_differs(burst, Settings(queue_worker_concurrency=8))
    assert [(d.a, d.b) for d in found] == [("queue ×8", "queue ×64"), ("queue ×8", "async")]
    assert not found[0].confounds and found[0].settings[0].name == "queue worker"
    assert found[1].line.startswith("differs: architecture queue vs async")
    assert burst_differs(burst, None) == []


def test_compare_lists_each_architectures_side_between_runs(summary: Summary) -> None:
    assert summary.environment is not None and summary.environment.settings is not None
    settings = {**summary.environment.settings, "scoring_async_workers": 2}
    other = summary.model_copy(
        update={"environment": summary.environment.model_copy(update={"settings": settings})}
    )
    lines = side_differences(summary, other)
    assert "async — differs: scoring processes 1 vs 2" in lines
    assert "sync — differs: nothing" in lines


def test_the_queue_clients_polling_is_part_of_its_side() -> None:
    """The queue waterfall's first step changes no stack setting, only how its client waits."""
    plain = StepConfig(Settings(), {}, client="plain polling", varies=frozenset())
    long_poll = StepConfig(Settings(), {}, client="long poll", varies=frozenset())
    differs = step_differs(
        lambda study, step: [plain, long_poll][step], "queue", 0, 1, "queue", "client polling"
    )
    assert differs is not None
    assert differs.line == "differs: queue client plain polling vs long poll"
    assert not differs.confounds
    same_client = step_differs(lambda study, step: [plain, plain][step], "queue", 0, 1, "queue", "")
    assert same_client is not None and same_client.line == "differs: nothing"
