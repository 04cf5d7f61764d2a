"""The server × framework measurement's plan and table (benchmark/server_matrix.py)."""

from __future__ import annotations

from benchmark.attribution import config_settings, measured
from benchmark.server_matrix import CONFIGS, configs, table
from benchmark.settings import BenchSettings
from scoring_bench.stack.servers import command, service


def test_every_configuration_once_per_round_on_its_own_server(tmp_path) -> None:  # type: ignore[no-untyped-def]
    plan = configs(2)
    assert [c.label for c in plan] == [label for label, _, _ in CONFIGS] * 2
    assert len({c.step for c in plan}) == len(plan)  # each its own folder
    base = BenchSettings(architectures=["sync", "async"])
    servers = []
    for config in plan[: len(CONFIGS)]:
        (arch,) = measured(base, config)
        settings = config_settings(base, config, tmp_path)
        argv = " ".join(command(service(f"scoring-{arch}"), settings))
        servers.append((arch, argv.split(" -m ")[1].split()[0], settings.scoring_sync_worker_class))
    assert servers == [
        ("sync", "gunicorn", "gthread"),
        ("sync", "gunicorn", "gevent"),
        ("sync", "granian", "gthread"),
        ("async", "uvicorn", "gthread"),
        ("async", "granian", "gthread"),
    ]


def test_table_gives_the_median_over_rounds() -> None:
    rows = [
        {"label": CONFIGS[0][0], "p50_ms": p50, "rps": rps, "cpu_ms_per_request": 3.0, "failure_ratio": 0}
        for p50, rps in ((100.0, 500.0), (102.0, 520.0), (98.0, 510.0))
    ]
    text = table(rows)
    line = next(x for x in text.splitlines() if x.startswith(f"| {CONFIGS[0][0]} "))
    assert "100.0 (100.0, 102.0, 98.0)" in line and "| 510 (500, 520, 510) |" in line
    assert f"| {CONFIGS[1][0]} | — | — | — | 0.0% |" in text  # not measured
