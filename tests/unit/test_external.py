"""The external target (benchmark/external.py): the targets, their defaults from the port settings, the
targets file and its errors, what the runner skips, the health check, and the report's lines."""

from __future__ import annotations

import argparse
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from benchmark.cli import _settings, add_commands
from benchmark.external import (
    SKIP_REASONS,
    TargetDown,
    TargetsError,
    check_targets,
    gate_skip,
    health_names,
    load_targets_file,
    resolve_targets,
    skipped,
    stack_target,
)
from benchmark.report import report_blocks
from benchmark.report.blocks import render_markdown
from benchmark.report.headline import status_blocks
from benchmark.settings import EXPERIMENTS, BenchSettings
from benchmark.summary import ArchitectureSummary, Environment, Summary
from benchmark.verification import CallCounts, ModelCalls
from scoring_bench.core.settings import Settings
from scoring_bench.stack.servers import service
from tests.integration.conftest import free_port

PRODUCT = [
    "model-sync",
    "model-async",
    "scoring-sync",
    "scoring-async",
    "scoring-batched",
    "queue-worker",
    "scoring-queue",
]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "targets.yaml"
    path.write_text(text)
    return path


def bench(**values: object) -> BenchSettings:
    return BenchSettings(bench_profile="smoke", **values)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- defaults


def test_external_defaults_are_target_host_and_each_port_setting() -> None:
    settings = bench(bench_target="external", target_host="10.1.2.3", scoring_sync_port=15001)
    targets = settings.targets()
    assert targets.mode == "external"
    assert [t.name for t in targets.services] == PRODUCT  # the control only when a file names it
    assert targets.url("scoring-sync") == "http://10.1.2.3:15001"
    assert targets.url("model-async") == f"http://10.1.2.3:{settings.model_async_port}"
    assert targets.get("queue-worker").url is None
    assert targets.metrics_urls()["queue-worker"] == [
        f"http://10.1.2.3:{settings.queue_worker_metrics_port}/metrics"
    ]
    assert targets.metrics_urls()["scoring-sync"] == ["http://10.1.2.3:15001/metrics"]


def test_local_targets_are_the_stack_the_runner_starts() -> None:
    settings = bench(host="127.0.0.1", scoring_async_port=18001, target_host="10.9.9.9")
    targets = settings.targets()
    assert targets.mode == "local"
    assert targets.url("scoring-async") == "http://127.0.0.1:18001"  # HOST, not TARGET_HOST
    control = resolve_targets(settings.stack_settings().model_copy(update={"minimal_control": True}))
    assert "scoring-minimal" in control.urls()


def test_external_stack_settings_reach_every_service_at_its_target(tmp_path: Path) -> None:
    path = write(tmp_path, "services:\n  scoring-async:\n    url: http://lb.example:80/async/\n")
    settings = bench(bench_target="external", target_host="10.1.2.3", bench_targets_file=path)
    stack = settings.stack_settings()
    assert stack.host == "10.1.2.3"
    assert service("scoring-async").predict_url(stack) == "http://lb.example:80/async/api/v1/ml/async/predict"
    assert service("scoring-sync").url(stack) == f"http://10.1.2.3:{settings.scoring_sync_port}"
    # what a child process (Locust, the generator) reads back from its environment
    again = Settings(service_urls=stack.to_env()["SERVICE_URLS"])
    assert again.service_urls == stack.service_urls
    assert settings.model_copy(update={"bench_target": "local"}).stack_settings().service_urls == {}


# --------------------------------------------------------------------------- the targets file


def test_the_file_overrides_per_service(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
services:
  scoring-sync:
    url: http://10.0.0.5:5001
    metrics: [http://10.0.0.5:5001/metrics, http://10.0.0.6:5001/metrics]
  scoring-async:
    url: https://async.example/
  queue-worker:
    metrics: [http://10.0.0.7:8003/metrics]
  model-sync:
    metrics: []
  model-async:
prometheus_url: http://prometheus:9090
""",
    )
    targets = bench(bench_target="external", target_host="h", bench_targets_file=path).targets()
    assert targets.file == str(path)
    assert targets.prometheus_url == "http://prometheus:9090"
    metrics = targets.metrics_urls()
    assert metrics["scoring-sync"] == ["http://10.0.0.5:5001/metrics", "http://10.0.0.6:5001/metrics"]
    assert metrics["scoring-async"] == ["https://async.example/metrics"]  # moved with its URL
    assert metrics["queue-worker"] == ["http://10.0.0.7:8003/metrics"]
    assert "model-sync" not in metrics  # metrics: [] leaves it unsampled
    assert targets.url("model-async").startswith("http://h:")  # an empty entry: the defaults


def test_the_control_is_a_target_only_when_the_file_names_it(tmp_path: Path) -> None:
    path = write(tmp_path, "services:\n  scoring-minimal:\n    url: http://h:9004\n")
    targets = bench(bench_target="external", bench_targets_file=path).targets()
    assert targets.url("scoring-minimal") == "http://h:9004"


def test_a_file_with_a_local_target_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="set BENCH_TARGET=external"):
        bench(bench_targets_file=write(tmp_path, "services: {}\n"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "services:\n  scoring-snyc:\n    url: http://h:1\n",
            "unknown service 'scoring-snyc'; known: model-sync",
        ),
        ("services:\n  scoring-sync:\n    url: ftp://h:1\n", "services.scoring-sync.url"),
        ("services:\n  scoring-sync:\n    url: 'http://'\n", "not an http:// or https:// URL with a host"),
        (
            "services:\n  scoring-sync:\n    metrics: [h:1/metrics]\n",
            "services.scoring-sync.metrics: 'h:1/metrics' is not an http",
        ),
        ("services:\n  queue-worker:\n    url: http://h:1\n", "queue-worker serves no HTTP"),
        ("services:\n  scoring-sync:\n    urls: http://h:1\n", "services.scoring-sync.urls: Extra inputs"),
        ("service:\n  scoring-sync: {}\n", "service: Extra inputs"),
        ("- scoring-sync\n", "expected a mapping with 'services'"),
        ("services:\n  scoring-sync: {url: http://h:1}}\n", "not valid YAML at line 2, column 34: expected"),
        ("prometheus_url: localhost:9090\n", "prometheus_url"),
    ],
)
def test_a_bad_file_says_what_and_where(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(TargetsError) as error:
        load_targets_file(path)
    assert expected in str(error.value)
    assert str(path) in str(error.value)
    with pytest.raises(TargetsError):  # and the settings' targets raise the same
        bench(bench_target="external", bench_targets_file=path).targets()


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(TargetsError, match="cannot be read"):
        load_targets_file(tmp_path / "nope.yaml")


def test_an_empty_file_means_every_default(tmp_path: Path) -> None:
    assert load_targets_file(write(tmp_path, "")).services == {}


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_cli_targets_option_means_an_external_target(tmp_path: Path) -> None:
    path = write(tmp_path, "services: {}\n")
    settings = _settings(parse(["bench", "--targets", str(path), "--profile", "smoke"]))
    assert settings.bench_target == "external" and settings.bench_targets_file == path
    assert _settings(parse(["bench", "--profile", "smoke"])).bench_target == "local"


# --------------------------------------------------------------------------- what is skipped


def test_nothing_is_skipped_on_the_local_stack() -> None:
    settings = bench(experiments=[*EXPERIMENTS, "faults", "soak"], bench_control=True)
    assert skipped(settings.targets(), list(settings.experiments), settings.runs_control()) == []


def test_what_needs_a_restart_is_skipped_with_why() -> None:
    settings = bench(bench_target="external", experiments=[*EXPERIMENTS, "faults"], bench_control=True)
    rows = {
        row.experiment: row.reason for row in skipped(settings.targets(), list(settings.experiments), True)
    }
    assert set(rows) == {"profile", "burst", "attribution", "faults", "control"}
    assert rows["burst"] == SKIP_REASONS["burst"] and "restarts the queue's worker" in rows["burst"]
    assert "client-side profiles ran" in rows["profile"]
    assert "scoring-minimal" in rows["control"]  # how to have it measured
    measured = skipped(settings.targets(), ["timeit", "locust", "openloop", "crosscheck"], False)
    assert measured == []  # the experiments that need no restart all run


def test_the_control_runs_in_part_where_the_targets_name_it(tmp_path: Path) -> None:
    path = write(tmp_path, "services:\n  scoring-minimal:\n    url: http://h:9004\n")
    settings = bench(bench_target="external", bench_targets_file=path)
    rows = {row.experiment for row in skipped(settings.targets(), ["timeit", "soak"], True)}
    assert rows == {"control (in part)", "soak (in part)"}


def test_runnable_leaves_out_what_is_skipped(tmp_path: Path) -> None:
    from benchmark.runner import runnable

    settings = bench(bench_target="external", experiments=[*EXPERIMENTS, "faults"], bench_control=True)
    external = runnable(settings, settings.targets())
    assert external.experiments == ["profile", "timeit", "locust", "openloop", "crosscheck"]
    assert external.runs_control() is False
    local = bench(experiments=list(EXPERIMENTS), bench_control=True)
    assert runnable(local, local.targets()) is local
    path = write(tmp_path, "services:\n  scoring-minimal:\n    url: http://h:9004\n")
    named = bench(bench_target="external", bench_targets_file=path, bench_control=True)
    assert runnable(named, named.targets()).runs_control() is True


# --------------------------------------------------------------------------- the health check


# Two model APIs' request counts, as their /metrics give them (one pod of each).
MODEL_METRICS = (
    "# TYPE http_request_duration_seconds histogram\n"
    + "".join(
        f'http_request_duration_seconds_count{{service="{name}",route="{route}",method="POST"}} 3.0\n'
        for name, route in (
            ("model-sync", "/api/v1/ml/sync/predict"),
            ("model-async", "/api/v1/ml/async/predict"),
        )
    )
    + 'http_request_duration_seconds_count{service="model-async",route="/api/v1/ml/async/predict_batch",'
    + 'method="POST"} 2.0\n'
)


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.endswith("/healthcheck"):
            body = json.dumps({"status": "OK"}).encode()
            self.send_response(200)
        elif self.path == "/metrics":
            body = MODEL_METRICS.encode()
            self.send_response(200)
        else:
            body = b"{}"
            self.send_response(404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def healthy() -> Iterator[str]:
    """A loopback server answering health and /metrics as a healthy service does."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_target_down_stops_the_run_naming_its_url(tmp_path: Path, healthy: str) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    path = write(
        tmp_path,
        f"services:\n  scoring-async:\n    url: {healthy}\n  scoring-sync:\n    url: {down}\n"
        f"  model-sync:\n    url: {healthy}\n  model-async:\n    url: {healthy}\n",
    )
    quiet = free_port()  # the worker's metrics: nothing listens there
    targets = bench(
        bench_target="external", bench_targets_file=path, queue_worker_metrics_port=quiet
    ).targets()
    missing = check_targets(targets, ["scoring-async", "model-sync"], timeout_s=2)  # healthy: no raise
    assert f"queue-worker metrics at http://127.0.0.1:{quiet}/metrics: unreachable (URLError)" in missing
    assert not any(m.startswith(("scoring-async", "model-sync ")) for m in missing)
    with pytest.raises(TargetDown) as error:
        check_targets(targets, health_names(targets, ["sync", "async"]), timeout_s=2)
    assert f"scoring-sync at {down}/api/v1/healthcheck: unreachable" in str(error.value)
    assert "scoring-async" not in str(error.value)


def test_metrics_that_do_not_answer_are_warnings(tmp_path: Path, healthy: str) -> None:
    gone = f"http://127.0.0.1:{free_port()}/metrics"
    path = write(
        tmp_path,
        f"services:\n  scoring-async:\n    url: {healthy}\n    metrics: [{healthy}/metrics, {gone}]\n"
        + "".join(f"  {name}:\n    metrics: []\n" for name in PRODUCT if name != "scoring-async"),
    )
    targets = bench(bench_target="external", bench_targets_file=path).targets()
    assert check_targets(targets, ["scoring-async"], timeout_s=2) == [
        f"scoring-async metrics at {gone}: unreachable (URLError)"
    ]


def test_the_gate_counts_model_calls_over_every_metrics_url(healthy: str) -> None:
    stack = Settings()
    two_pods = {
        "model-sync": [f"{healthy}/metrics", f"{healthy}/metrics"],
        "model-async": [f"{healthy}/metrics"],
    }
    # single: 3 + 3 from model-sync's two pods, 3 from model-async's; batch calls: model-async's 2
    assert ModelCalls(stack, two_pods).read() == CallCounts(single=9, batch=2)
    assert (
        ModelCalls(stack, {"model-sync": [f"{healthy}/metrics"]}).read() is None
    )  # model-async: not counted


def test_the_gate_is_skipped_when_the_targets_redis_does_not_answer() -> None:
    quiet = free_port()
    settings = bench(bench_target="external", redis_url=f"redis://:hunter2@127.0.0.1:{quiet}/0")
    skip = gate_skip(settings.targets(), settings.stack_settings(), 5)
    assert skip is not None and skip.experiment == "verification gate"
    assert f"redis://127.0.0.1:{quiet}/0 does not answer" in skip.reason and "hunter2" not in skip.reason
    assert gate_skip(settings.targets(), settings.stack_settings(), 0) is None  # not asked for
    local = bench(redis_url=f"redis://127.0.0.1:{quiet}/0")
    assert gate_skip(local.targets(), local.stack_settings(), 5) is None  # the local stack: the gate runs


def test_health_names_are_the_measured_handlers_and_the_model_apis() -> None:
    targets = bench(bench_target="external").targets()
    assert health_names(targets, ["async"]) == ["model-sync", "model-async", "scoring-async"]


# --------------------------------------------------------------------------- the record and the report


def external_summary(tmp_path: Path) -> Summary:
    settings = bench(bench_target="external", target_host="10.1.2.3", experiments=list(EXPERIMENTS))
    targets = settings.targets()
    target = stack_target(targets, skipped(targets, list(settings.experiments), True), ["m: unreachable"])
    environment = Environment(target=target)
    summary = Summary(run_id="ext", environment=environment)
    return Summary.from_json(summary.to_json())  # the record survives summary.json


def test_the_report_says_where_the_target_was_and_what_was_skipped(tmp_path: Path) -> None:
    summary = external_summary(tmp_path)
    text = render_markdown(report_blocks(summary, {}), tmp_path)
    assert "External target: model-sync http://10.1.2.3:" in text
    assert "started by someone else" in text
    assert "## Skipped against the external target" in text
    for name in ("profile", "burst", "attribution", "control"):
        assert f"- {name}: {SKIP_REASONS[name]}" in text
    assert "⚠ m: unreachable: its resources are missing." in text
    assert "## Machine (the load generator's)" in text
    assert "This is the machine that generated the load, and its calibration" in text


def test_what_was_skipped_is_not_reported_missing(tmp_path: Path) -> None:
    base = external_summary(tmp_path)
    summary = base.model_copy(
        update={
            "experiments": ["profile", "timeit"],
            "complete": True,
            "architectures": {"async": ArchitectureSummary()},
        }
    )
    text = render_markdown(status_blocks(summary), tmp_path)
    assert "profile" not in text and "attribution" not in text  # in the Skipped section instead
    assert "timeit (async)" in text  # what should have run and did not is still missing
    local = summary.model_copy(update={"environment": None})
    assert "profile (async)" in render_markdown(status_blocks(local), tmp_path)


def test_a_local_run_has_no_external_lines(tmp_path: Path) -> None:
    settings = bench()
    target = stack_target(settings.targets(), [], [])
    text = render_markdown(
        report_blocks(Summary(run_id="loc", environment=Environment(target=target)), {}), tmp_path
    )
    assert "External target" not in text and "Skipped against" not in text
    assert "## Machine\n" in text


def test_the_plan_leaves_out_the_server_side_profiles() -> None:
    from benchmark.duration import planned_duration_s

    local = bench(experiments=["profile", "timeit"])
    external = local.model_copy(update={"bench_target": "external"})
    assert planned_duration_s(external) < planned_duration_s(local)
