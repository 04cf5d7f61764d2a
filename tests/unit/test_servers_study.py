"""The attribution's servers study: its configurations and stacks (benchmark/attribution_servers.py), the
split of the gap (benchmark/analysis/servers.py) and its report (benchmark/report/servers.py)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from benchmark.analysis.attribution import Measurement
from benchmark.analysis.servers import advantage, gap_split, servers_section, share
from benchmark.attribution import COLUMNS, _row, config_settings, measured, studies
from benchmark.attribution_servers import (
    FASTAPI_GRANIAN,
    FASTAPI_UVICORN,
    FLASK_GEVENT,
    FLASK_GRANIAN,
    FLASK_GTHREAD,
    SERVERS,
    STACKS,
    STUDY,
    plan,
)
from benchmark.duration import attribution_config_s
from benchmark.report import build_report
from benchmark.report.servers import servers_blocks, split_sentence
from benchmark.settings import BenchSettings
from benchmark.summary import GapSplit, ServerFramework, Share, Summary
from scoring_bench.stack.servers import command, service
from tests.fixtures.run_folder import make_run_folder


def _base(**values: Any) -> BenchSettings:
    return BenchSettings(
        **{"architectures": ["sync", "async"], "bench_attribution_studies": [STUDY], **values}
    )


# --------------------------------------------------------------------------- configurations


def test_every_configuration_once_per_round_and_the_order_rotates() -> None:
    stacks = plan(3)
    assert [s.step for s in stacks] == list(range(3 * len(STACKS)))  # each its own folder
    for rnd in range(3):
        labels = [label for s in stacks if s.round == rnd for label in s.labels.values()]
        assert sorted(labels) == sorted(server.label for server in SERVERS)
    firsts = [next(s for s in stacks if s.round == rnd).servers for rnd in range(3)]
    assert firsts == [STACKS[0], STACKS[1], STACKS[2]]
    for stack in stacks:  # at most one configuration per architecture on a stack
        assert len(set(stack.architectures)) == len(stack.architectures)


def test_each_stack_runs_its_configurations_servers(tmp_path: Path) -> None:
    base = _base(bench_profile="quick")
    found = {}
    for config in studies(base)[: len(STACKS)]:
        settings = config_settings(base, config, tmp_path)
        for arch in measured(base, config):
            argv = " ".join(command(service(f"scoring-{arch}"), settings))
            program = argv.split(" -m ")[1].split()[0]
            worker_class = settings.scoring_sync_worker_class if program == "gunicorn" else ""
            found[config.labels[arch]] = (arch, program, worker_class)
    assert found == {
        FLASK_GTHREAD.label: ("sync", "gunicorn", "gthread"),
        FLASK_GEVENT.label: ("sync", "gunicorn", "gevent"),
        FLASK_GRANIAN.label: ("sync", "granian", ""),
        FASTAPI_UVICORN.label: ("async", "uvicorn", ""),
        FASTAPI_GRANIAN.label: ("async", "granian", ""),
    }


def test_rows_are_labelled_by_configuration_and_use_the_studys_sizes(tmp_path: Path) -> None:
    base = _base(bench_profile="quick")
    config = studies(base)[0]
    settings = config_settings(base, config, tmp_path)
    assert _row(config, settings, "sync", 0, [], None)["label"] == FLASK_GTHREAD.label
    assert _row(config, settings, "async", 0, [], None)["label"] == FASTAPI_UVICORN.label
    assert config.bench == {
        "bench_attribution_timeit": base.bench_servers_timeit,
        "bench_attribution_load_s": base.bench_servers_load_s,
    }


def test_the_study_runs_when_asked_and_its_rounds_come_from_the_profile() -> None:
    assert all(c.study != STUDY for c in studies(_base(bench_attribution_studies=["fanout"])))
    assert all(c.study != STUDY for c in studies(BenchSettings(architectures=["queue"])))
    for profile, rounds in (("smoke", 1), ("quick", 2), ("full", 3)):
        assert len(studies(_base(bench_profile=profile))) == rounds * len(STACKS)
    assert STUDY in BenchSettings().bench_attribution_studies  # in quick and full unless left out


def test_quick_plans_the_study_within_its_budget() -> None:
    base = _base(bench_profile="quick")
    planned = sum(attribution_config_s(base, config) for config in studies(base))
    assert 30 < planned <= 90  # the budget: about 90 s of wall time in quick


# --------------------------------------------------------------------------- the split


def _m(
    label: str, arch: str, step: int, p50: float | None, rps: float | None, cpu: float = 1.0
) -> Measurement:
    return Measurement(
        study=STUDY,
        step=step,
        label=label,
        factor="",
        before="",
        after="",
        arch=arch,
        rep=0,
        p50_ms=p50,
        p95_ms=None,
        p99_ms=None,
        rps=rps,
        failure_ratio=0.0,
        load_users=64,
        num_models=2,
        model_kind="sleep",
        model_latency="normal",
        cpu_ms_per_request=1.0,
    )


# per configuration, each round's (p50 ms, req/s): the defaults 100 ms / 50 ms apart and 600 req/s; on
# granian 500 req/s apart (the framework's ~5/6), gevent 60 req/s above gthread
ROUNDS: dict[str, list[tuple[float, float]]] = {
    FLASK_GTHREAD.label: [(100.0, 600.0), (102.0, 620.0)],
    FLASK_GEVENT.label: [(99.0, 660.0), (101.0, 680.0)],
    FLASK_GRANIAN.label: [(99.0, 690.0), (101.0, 710.0)],
    FASTAPI_UVICORN.label: [(50.0, 1200.0), (52.0, 1220.0)],
    FASTAPI_GRANIAN.label: [(50.0, 1190.0), (52.0, 1210.0)],
}


def _rows(rounds: dict[str, list[tuple[float, float]]] = ROUNDS) -> list[Measurement]:
    arch = {s.label: s.architecture for s in SERVERS}
    return [
        _m(label, arch[label], rnd * 3, p50, rps)
        for label, values in rounds.items()
        for rnd, (p50, rps) in enumerate(values)
    ]


def test_advantage_and_its_range_over_the_rounds() -> None:
    study = servers_section(_rows())
    assert study is not None
    levels = {level.label: level for level in study.servers}
    gap = advantage(levels[FASTAPI_UVICORN.label], levels[FLASK_GTHREAD.label], "rps")
    assert gap == pytest.approx((600.0, 1200 - 620, 1220 - 600))
    latency = advantage(levels[FASTAPI_UVICORN.label], levels[FLASK_GTHREAD.label], "p50_ms")
    assert latency == pytest.approx((50.0, 100 - 52, 102 - 50))  # worse's best − better's worst, ...


def test_share_takes_the_corners_of_both_ranges() -> None:
    assert share((10.0, 8.0, 12.0), (20.0, 16.0, 25.0)) == Share(value=0.5, low=8 / 25, high=12 / 16)
    assert share((10.0, None, None), (20.0, 16.0, 25.0)) == Share(value=0.5)  # one round: no range
    assert share((10.0, 8.0, 12.0), (2.0, -1.0, 5.0)) == Share(value=5.0)  # the whole reaches zero
    assert share((10.0, 8.0, 12.0), (0.0, 0.0, 0.0)) == Share()
    assert share((None, None, None), (20.0, 16.0, 25.0)) == Share()


def test_the_throughput_split_between_framework_and_servers() -> None:
    study = servers_section(_rows())
    assert study is not None and study.rounds == 2 and study.missing == [] and study.load_users == 64
    split = study.throughput
    assert split is not None
    assert split.gap == pytest.approx(600.0) and split.framework_gap == pytest.approx(500.0)
    assert split.framework.value == pytest.approx(500 / 600)
    # framework part 500 (480..520), whole 600 (580..620)
    assert split.framework.low == pytest.approx(480 / 620) and split.framework.high == pytest.approx(
        520 / 580
    )
    assert split.gevent.value == pytest.approx(60 / 600)
    assert (split.gap_within_noise, split.framework_within_noise, split.servers_within_noise) == (
        False,
        False,
        False,
    )


def test_the_latency_split_says_when_the_servers_part_is_noise() -> None:
    study = servers_section(_rows())
    assert study is not None and study.latency is not None
    split = study.latency
    assert split.gap == pytest.approx(50.0) and split.framework_gap == pytest.approx(49.0)
    assert split.framework.low is not None and split.framework.high is not None
    assert split.framework.low < 1 < split.framework.high  # 47/52 .. 51/48
    assert split.servers_within_noise is True and split.framework_within_noise is False
    text = split_sentence(split, study.load_users, study.rounds)
    assert "The servers' part is within the noise" in text and "98%" in text
    assert "closes 2% (-2% to 6% over the rounds) of it: within the noise of the rounds" in text
    both = split.model_copy(update={"framework_within_noise": True})
    assert "these rounds cannot split this gap" in split_sentence(both, 64, 2)


def test_a_gap_within_the_noise_is_not_split() -> None:
    rounds = dict(ROUNDS)
    rounds[FASTAPI_UVICORN.label] = [(50.0, 590.0), (52.0, 640.0)]  # overlaps Flask's 600..620
    split = servers_section(_rows(rounds))
    assert split is not None and split.throughput is not None
    assert split.throughput.gap_within_noise is True
    assert split.throughput.framework.low is None and split.throughput.framework_within_noise is None
    assert "nothing to split" in split_sentence(split.throughput, 64, 2)


def test_missing_configurations() -> None:
    rounds = {k: v for k, v in ROUNDS.items() if k != FLASK_GRANIAN.label}
    study = servers_section(_rows(rounds))
    assert study is not None and study.missing == [FLASK_GRANIAN.label]
    assert study.throughput is not None and study.throughput.framework.value is None
    assert study.throughput.gevent.value is not None
    assert "cannot be split" in split_sentence(study.throughput, 64, 2)
    no_default = servers_section(_rows({FLASK_GEVENT.label: ROUNDS[FLASK_GEVENT.label]}))
    assert no_default is not None and no_default.latency is None and no_default.throughput is None
    assert gap_split({}, "rps") is None
    assert servers_section([]) is None
    text = " ".join(b.text for b in servers_blocks(no_default) if hasattr(b, "text"))
    assert "no gap to split" in text and "Not measured: " + FLASK_GTHREAD.label in text


def test_one_round_has_no_range_and_says_so() -> None:
    study = servers_section(_rows({k: v[:1] for k, v in ROUNDS.items()}))
    assert study is not None and study.rounds == 1 and study.throughput is not None
    split = study.throughput
    assert split.framework.value == pytest.approx(500 / 600) and split.framework.low is None
    assert split.gap_within_noise is None and split.servers_within_noise is None
    assert "One round: no spread" in split_sentence(split, 64, 1)


def test_the_sentence_follows_the_numbers() -> None:
    split = GapSplit(
        metric="rps",
        gap=600.0,
        gap_low=580.0,
        gap_high=620.0,
        framework_gap=450.0,
        framework=Share(value=0.75, low=0.7, high=0.8),
        gevent=Share(value=0.1, low=0.05, high=0.15),
        gap_within_noise=False,
        framework_within_noise=False,
        servers_within_noise=False,
    )
    text = split_sentence(split, 64, 3)
    assert "the throughput gap at 64 users between the defaults (async − sync: 600 req/s, 580 to 620 " in text
    assert "75% (70% to 80% over the rounds) remains with both frameworks on granian (450 req/s)" in text
    assert "the servers' part is 25% (20% to 30% over the rounds)" in text
    assert "closes 10% (5% to 15% over the rounds) of it" in text
    assert "noise" not in text
    framework_noise = split.model_copy(
        update={"framework": Share(value=0.1, low=-0.1, high=0.3), "framework_within_noise": True}
    )
    assert "The framework's part is within the noise" in split_sentence(framework_noise, 64, 3)


# --------------------------------------------------------------------------- the report from a run folder


def _append_rows(run_dir: Path, rounds: dict[str, list[tuple[float, float]]]) -> None:
    path = run_dir / "attribution" / "measurements.csv"
    arch = {s.label: s.architecture for s in SERVERS}
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS)
        for label, values in rounds.items():
            for rnd, (p50, rps) in enumerate(values):
                writer.writerow(
                    {
                        "study": STUDY,
                        "step": rnd * len(STACKS),
                        "label": label,
                        "arch": arch[label],
                        "rep": 0,
                        "p50_ms": p50,
                        "rps": rps,
                        "failure_ratio": 0,
                        "load_users": 64,
                        "cpu_ms_per_request": 2.0 if arch[label] == "sync" else 1.0,
                    }
                )


def test_the_report_has_the_table_and_the_split(tmp_path: Path) -> None:
    run_dir = make_run_folder(tmp_path / "results" / "20261201-100000", attribution=True)
    _append_rows(run_dir, ROUNDS)
    written = build_report(run_dir)
    attribution = Summary.load(written["summary"]).attribution
    assert attribution is not None and isinstance(attribution.servers, ServerFramework)
    assert [s.label for s in attribution.servers.servers] == [s.label for s in SERVERS]
    text = written["markdown"].read_text()
    assert "### The server apart from the framework" in text
    assert "| Flask | gunicorn gthread | 101.0 ms (100.0–102.0, n=2) | 610 req/s (600–620, n=2) |" in text
    assert "83% (77% to 90% over the rounds) remains with both frameworks on granian" in text


def test_a_run_without_the_study_has_no_section(tmp_path: Path) -> None:
    run_dir = make_run_folder(tmp_path / "results" / "20261201-100000", attribution=True)
    written = build_report(run_dir)
    attribution = Summary.load(written["summary"]).attribution
    assert attribution is not None and attribution.servers is None
    assert "The server apart from the framework" not in written["markdown"].read_text()
