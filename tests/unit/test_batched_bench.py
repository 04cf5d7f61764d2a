"""The batching handler (``batched``) as the benchmark's fourth architecture: the analysis and the report
of a run folder that drove it, its comparison with async, and the experiments' pieces that know it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from benchmark.analysis import build_summary
from benchmark.analysis.comparison import batched_vs_async
from benchmark.analysis.phases import service_names, time_split_section
from benchmark.analysis.raw import TimeitRow
from benchmark.faults.plan import fault, faults_for
from benchmark.ideal import batched_ideal_latency_ms
from benchmark.load import LOCUSTFILE, USER_CLASSES
from benchmark.profiles import frame_category
from benchmark.report import report_blocks
from benchmark.report.batched import batched_sentence
from benchmark.report.blocks import render_markdown
from benchmark.report.compare import batched_blocks as compare_batched_blocks
from benchmark.report.figures import COLORS, color
from benchmark.settings import ARCHITECTURES, BenchSettings, model_api_of
from benchmark.summary import (
    ArchitectureSummary,
    BatchedVsAsync,
    Comparison,
    OneUser,
    Ramp,
    RampPoint,
    Repeated,
    Repeats,
    Summary,
    Sustained,
)
from scoring_bench.core.settings import Settings
from scoring_bench.core.timing import parse_server_timing
from tests.fixtures.run_folder import (
    BASE_LATENCY_MS,
    BATCH_WAIT_MS,
    SERVICE_CPU,
    SUSTAINED_USERS,
    make_run_folder,
)

REPEATS = 3


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_run_folder(tmp_path_factory.mktemp("results") / "batched", batched=True, repeats=REPEATS)


@pytest.fixture(scope="module")
def summary(run_dir: Path) -> Summary:
    return build_summary(run_dir)


# --------------------------------------------------------------------------- the experiments


def test_batched_is_an_architecture_of_every_default_run_in_its_place() -> None:
    assert ARCHITECTURES == ("sync", "async", "batched", "queue")
    assert BenchSettings(bench_profile="smoke").architectures == ["sync", "async", "batched", "queue"]
    assert USER_CLASSES["batched"] == "BatchedScoringUser"


def test_the_locust_user_drives_the_batching_handler() -> None:
    """Read from the locustfile's source: importing Locust here would monkey-patch the test process."""
    tree = ast.parse(LOCUSTFILE.read_text())
    users = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    user = users["BatchedScoringUser"]
    assert [ast.unparse(base) for base in user.bases] == ["_ScoringUser"]  # checked answers, as async's
    assert "path = BATCHED_PREDICT_PATH" in ast.unparse(user)
    configure = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "_configure")
    assert "(BatchedScoringUser, 'scoring-batched', settings.scoring_batched_port)" in ast.unparse(configure)


def test_batched_calls_the_async_model_api() -> None:
    assert model_api_of("batched") == "model-async"
    assert model_api_of("sync") == "model-sync" and model_api_of("async") == "model-async"
    assert model_api_of("queue", "sync") == "model-sync"
    assert service_names("batched") == ("scoring-batched", "model-async", "redis")


def test_the_faults_hit_batched_s_model_api_with_its_wait_in_the_bound() -> None:
    bench = BenchSettings(bench_profile="smoke", batch_max_wait_ms=20.0, model_timeout_s=2.0)
    freeze = fault(bench, "batched", "model-freeze")
    assert freeze.target == "model-async"
    assert freeze.timeout_s == pytest.approx(2.02) and "BATCH_MAX_WAIT_MS" in freeze.timeout_name
    assert fault(bench, "async", "model-freeze").timeout_s == pytest.approx(2.0)
    kill = fault(bench, "batched", "server-worker-kill")
    assert kill.target == "scoring-batched" and kill.skipped and "SCORING_BATCHED_WORKERS" in kill.skipped
    assert [f.name for f in faults_for(bench, "batched")] == [f.name for f in faults_for(bench, "async")]


def test_the_micro_batcher_and_the_batch_calls_are_model_calls_in_a_profile() -> None:
    batcher = "/app/scoring_bench/service/batcher.py"
    scorer = "/app/scoring_bench/service/scorer_batched.py"
    assert frame_category("submit", batcher) == "model_calls"
    assert frame_category("_send", batcher) == "model_calls"
    assert frame_category("call_batch", scorer) == "model_calls"
    assert frame_category("score", scorer) is None  # the handler's own code: its caller's category
    assert frame_category("predict_batch", "/app/scoring_bench/service/scorer_async.py") == "model_calls"


# --------------------------------------------------------------------------- the analysis


def test_the_run_folder_s_batched_sections(summary: Summary) -> None:
    assert list(summary.architectures) == ["sync", "async", "batched"]
    batched = summary.architectures["batched"]
    assert batched.ideal is not None
    assert batched.ideal.p50_ms == pytest.approx(batched_ideal_latency_ms(Settings()).p50_ms)
    assert batched.one_user and batched.one_user.p50_ms == pytest.approx(BASE_LATENCY_MS["batched"], abs=0.5)
    assert batched.ramp and batched.ramp.breaking_point and batched.ramp.breaking_point.users is None
    assert batched.sustained and batched.sustained.users == SUSTAINED_USERS["batched"]
    rps = SUSTAINED_USERS["batched"] * 1000 / BASE_LATENCY_MS["batched"]
    assert batched.sustained.rps == pytest.approx(rps, rel=0.01)
    # the CPU of scoring-batched, model-async and Redis only: 50% of a core over the window's requests
    cpu_ms = sum(SERVICE_CPU["batched"].values()) / 100 * 1000 / rps
    assert batched.sustained.server_cpu_ms_per_request == pytest.approx(cpu_ms, rel=0.02)
    assert batched.repeats and batched.repeats.sustained_rps and batched.repeats.sustained_rps.n == REPEATS


def test_the_batched_time_split_puts_the_batch_wait_apart(summary: Summary) -> None:
    split = summary.architectures["batched"].time_split
    assert split is not None and split.batch_wait_ms == pytest.approx(BATCH_WAIT_MS + 0.1, abs=0.1)
    assert split.models_ms == pytest.approx(47.0 + 1.0, abs=1.5)  # the slowest of two U(40, 50) + 1 ms
    assert summary.architectures["async"].time_split is not None
    assert summary.architectures["async"].time_split.batch_wait_ms is None


def test_the_time_split_follows_the_slowest_model_s_wait_and_call() -> None:
    header = (
        "feature_store;dur=1, batch_wait_0;dur=5, model_0;dur=40, batch_wait_1;dur=1, model_1;dur=42, "
        "batch_size_0;desc=3, batch_size_1;desc=1, total;dur=50"
    )
    split = time_split_section([TimeitRow(51.0, 200, parse_server_timing(header))], concurrent=True)
    assert split is not None
    assert (split.batch_wait_ms, split.models_ms, split.feature_store_ms) == (
        5.0,
        40.0,
        1.0,
    )  # 5 + 40 > 1 + 42
    assert split.other_ms == pytest.approx(4.0)


def test_the_comparison_of_the_run_folder(summary: Summary) -> None:
    comparison = summary.comparison.batched_vs_async
    assert comparison is not None
    archs = summary.architectures
    assert comparison == batched_vs_async(archs, Settings())
    # sustained at 16 users of 55 ms against 8 of 48 ms, each repetition 10% slower alike
    ratio = (SUSTAINED_USERS["batched"] / BASE_LATENCY_MS["batched"]) / (
        SUSTAINED_USERS["async"] / BASE_LATENCY_MS["async"]
    )
    assert comparison.sustained_rps_ratio == pytest.approx(ratio, rel=0.01)
    spread = comparison.sustained_rps_ratio_range
    assert spread is not None and spread.n == REPEATS and spread.min == pytest.approx(ratio, rel=0.01)
    assert (comparison.batched_breaking_users, comparison.async_breaking_users) == (16, 8)
    cost = BASE_LATENCY_MS["batched"] - BASE_LATENCY_MS["async"]
    assert comparison.one_user_p50_cost_ms == pytest.approx(cost, abs=1.0)
    assert comparison.one_user_p50_cost_range_ms is not None
    assert comparison.one_user_p50_cost_range_ms.n == REPEATS
    assert comparison.ideal_p50_cost_ms == pytest.approx(Settings().batch_max_wait_ms + 1.0)  # + one item
    assert (comparison.batch_max_wait_ms, comparison.batch_max_size) == (5.0, 32)


def test_a_run_without_batched_has_no_comparison(tmp_path: Path) -> None:
    summary = build_summary(make_run_folder(tmp_path / "plain"))
    assert summary.comparison.batched_vs_async is None
    assert "Batching against async" not in render_markdown(report_blocks(summary, {}), tmp_path)


def _arch(
    p50: float | None,
    rps: float | None,
    peak: float | None,
    p50s: list[float | None],
    rpss: list[float | None],
) -> ArchitectureSummary:
    def repeated(values: list[float | None]) -> Repeated:
        present = sorted(v for v in values if v is not None)
        median = present[len(present) // 2] if present else None
        return Repeated(
            values=values,
            median=median,
            min=min(present, default=None),
            max=max(present, default=None),
            n=len(present),
        )

    return ArchitectureSummary(
        one_user=OneUser(p50_ms=p50) if p50 is not None else None,
        sustained=Sustained(users=64, rps=rps) if rps is not None else None,
        ramp=Ramp(peak=RampPoint(users=128, rps=peak)) if peak is not None else None,
        repeats=Repeats(one_user_p50_ms=repeated(p50s), sustained_rps=repeated(rpss))
        if p50s or rpss
        else None,
    )


def test_the_comparison_takes_the_medians_and_pairs_the_repetitions() -> None:
    batched = _arch(55.0, 1000.0, 1200.0, [54.0, 56.0, 55.0], [1800.0, 2000.0, 2100.0])
    other = _arch(48.0, 900.0, 1000.0, [48.0, 49.0, 47.0], [1000.0, 1000.0, 1000.0])
    comparison = batched_vs_async({"async": other, "batched": batched})
    assert comparison is not None
    assert comparison.sustained_rps_ratio == pytest.approx(2.0)  # medians: 2000 ÷ 1000, not 1000 ÷ 900
    assert comparison.ramp_peak_ratio == pytest.approx(1.2)
    assert comparison.one_user_p50_cost_ms == pytest.approx(55.0 - 48.0)
    spread = comparison.sustained_rps_ratio_range
    assert spread is not None and (spread.min, spread.max, spread.n) == (1.8, 2.1, 3)
    cost = comparison.one_user_p50_cost_range_ms
    assert cost is not None and cost.values == [6.0, 7.0, 8.0] and cost.median == 7.0


def test_the_comparison_without_repetitions_or_without_a_measurement() -> None:
    single = batched_vs_async(
        {"async": _arch(48.0, 900.0, None, [], []), "batched": _arch(55.0, 1800.0, None, [], [])}
    )
    assert single is not None and single.sustained_rps_ratio == pytest.approx(2.0)
    assert single.sustained_rps_ratio_range is None and single.ramp_peak_ratio is None
    unpaired = batched_vs_async(
        {
            "async": _arch(48.0, 900.0, None, [48.0, None], [900.0, None]),
            "batched": _arch(55.0, 1800.0, None, [55.0, 56.0], [1800.0, 1700.0]),
        }
    )
    assert unpaired is not None and unpaired.sustained_rps_ratio_range is None  # one pair: no spread
    assert batched_vs_async({"batched": _arch(55.0, 1.0, None, [], [])}) is None
    nothing = {"async": ArchitectureSummary(), "batched": ArchitectureSummary()}
    assert batched_vs_async(nothing) is None


# --------------------------------------------------------------------------- the report


def test_the_report_shows_batched_everywhere(summary: Summary, tmp_path: Path) -> None:
    text = render_markdown(report_blocks(summary, {}), tmp_path)
    assert "|  | sync | async | batched |" in text  # the headline's column
    assert "Batching against async: batching served 1.75× async's throughput at the breaking point" in text
    assert "per repetition 1.75× to 1.75×, n=3" in text
    comparison = summary.comparison.batched_vs_async
    assert comparison is not None and comparison.one_user_p50_cost_ms is not None
    assert (
        f"for {comparison.one_user_p50_cost_ms:+.1f} ms at one user (p50, batched − async; per repetition"
        in text
    )
    assert "the ideals predict +6.0 ms: BATCH_MAX_WAIT_MS = 5 ms for a batch that never fills" in text
    for heading in (
        "batched: at one user",
        "batched did not break",
        "batched held",
        "Under stress at 32 users batched",
    ):
        assert heading in text
    assert "before its batch was sent the request waited 5.1 ms" in text
    assert "batched 1 uvicorn worker(s), batches of at most 32 sent within 5.0 ms" in text


def test_batched_has_a_colour_of_its_own() -> None:
    assert color("batched") == COLORS["batched"]
    assert len({color(arch) for arch in ARCHITECTURES}) == len(ARCHITECTURES)


def _comparison(**fields: object) -> BatchedVsAsync:
    return BatchedVsAsync.model_validate(fields)


def test_the_sentence_says_what_was_measured() -> None:
    assert batched_sentence(None) is None
    assert batched_sentence(_comparison()) is None
    gain_only = batched_sentence(
        _comparison(sustained_rps_ratio=1.5, batched_breaking_users=128, async_breaking_users=64)
    )
    assert gain_only == (
        "batching served 1.50× async's throughput at the breaking point (maximum sustained throughputs, at "
        "128 and 64 users); its latency at one user was not measured."
    )
    ramp_only = batched_sentence(_comparison(ramp_peak_ratio=1.3, one_user_p50_cost_ms=5.5))
    assert ramp_only is not None and ramp_only.startswith(
        "batching served 1.30× async's throughput in the ramp"
    )
    assert ramp_only.endswith("for +5.5 ms at one user (p50, batched − async).")
    cost_only = batched_sentence(_comparison(one_user_p50_cost_ms=-0.4))
    assert cost_only == (
        "the throughput of the two was not measured; at one user batching cost -0.4 ms at one user (p50, "
        "batched − async)."
    )


def test_compare_runs_has_a_batched_section(summary: Summary, tmp_path: Path) -> None:
    plain = build_summary(make_run_folder(tmp_path / "plain"))
    assert compare_batched_blocks(plain, plain) == []
    assert "nothing to compare" in render_markdown(compare_batched_blocks(plain, summary), tmp_path)
    table = render_markdown(compare_batched_blocks(summary, summary), tmp_path)
    assert "max sustained throughput ÷ async's" in table and "1.75×" in table and "same" in table


def test_the_comparison_fields_are_optional_for_older_summaries() -> None:
    assert Comparison.model_validate({}).batched_vs_async is None
    assert Comparison.model_validate({"timeit_improvement_pct": None}).batched_vs_async is None
