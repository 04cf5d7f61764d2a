"""Which faults run where, their bounds and waits (benchmark.faults.plan), the knobs and profiles, the
planned duration, and the product settings the faults rely on (the embedded Redis's append-only file,
Celery's cancel-on-connection-loss)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmark.duration import planned_duration_s, planned_faults_s
from benchmark.faults.plan import faults_for, ledger_wait_s, retry_budget_s, run_seconds
from benchmark.settings import FAULTS, BenchSettings
from feature_store import embedded
from scoring_bench.service.queue import celery_config, runs_key

AMQP = "amqp://guest:guest@127.0.0.1:5672//"


def test_every_architecture_gets_the_common_faults_and_the_queue_its_own() -> None:
    bench = BenchSettings(bench_profile="quick")
    assert [f.name for f in faults_for(bench, "sync")] == [
        "model-kill",
        "model-freeze",
        "redis-restart",
        "server-worker-kill",
    ]
    assert [f.name for f in faults_for(bench, "queue")] == list(FAULTS)
    sync = {f.name: f for f in faults_for(bench, "sync")}
    assert sync["model-kill"].target == "model-sync" and sync["model-kill"].action == "kill-restart"
    assert sync["model-freeze"].action == "freeze" and sync["redis-restart"].target == "redis"
    assert all(f.skipped is None for f in sync.values())
    queue = {f.name: f for f in faults_for(bench, "queue")}
    assert queue["model-kill"].target == "model-async"  # QUEUE_MODEL_API
    assert queue["queue-worker-kill"].target == "queue-worker" and queue["queue-worker-kill"].skipped is None


def test_the_bound_of_a_failure_is_the_timeout_of_what_failed() -> None:
    bench = BenchSettings(model_timeout_s=2.0, model_connect_timeout_s=0.5, redis_timeout_s=1.0)
    sync = {f.name: f for f in faults_for(bench, "sync")}
    assert sync["model-freeze"].error_limit_ms == 2200.0
    assert sync["model-kill"].error_limit_ms == 700.0
    assert sync["redis-restart"].error_limit_ms == 1200.0
    assert sync["server-worker-kill"].error_limit_ms == 2200.0  # reset when it dies, after at most that
    queue = {f.name: f for f in faults_for(bench, "queue")}
    assert queue["model-freeze"].timeout_s == pytest.approx(1.0 + 2.0)  # the submit: result store + broker


def test_a_uvicorn_worker_is_killed_only_when_there_are_several() -> None:
    one = {f.name: f for f in faults_for(BenchSettings(), "async")}
    assert (
        one["server-worker-kill"].skipped and "SCORING_ASYNC_WORKERS=1" in one["server-worker-kill"].skipped
    )
    two = {f.name: f for f in faults_for(BenchSettings(scoring_async_workers=2), "async")}
    assert two["server-worker-kill"].skipped is None and two["server-worker-kill"].action == "kill-child"
    assert {f.name: f for f in faults_for(BenchSettings(), "sync")}["server-worker-kill"].skipped is None


def test_a_redis_or_broker_the_stack_does_not_own_is_not_restarted() -> None:
    user_redis = {f.name: f for f in faults_for(BenchSettings(redis_url="redis://10.0.0.1:6379/0"), "queue")}
    assert user_redis["redis-restart"].skipped and user_redis["broker-restart"].skipped
    embedded_broker = {f.name: f for f in faults_for(BenchSettings(), "queue")}
    assert "redis-restart" in str(embedded_broker["broker-restart"].skipped)
    rabbit = {f.name: f for f in faults_for(BenchSettings(broker_url=AMQP), "queue")}
    assert "BENCH_FAULTS_RABBITMQ_NODE" in str(rabbit["broker-restart"].skipped)
    named = {
        f.name: f
        for f in faults_for(BenchSettings(broker_url=AMQP, bench_faults_rabbitmq_node="r@h"), "queue")
    }
    assert named["broker-restart"].skipped is None and named["broker-restart"].action == "rabbitmq-restart"


def test_bench_faults_picks_the_faults() -> None:
    bench = BenchSettings(bench_faults="model-freeze,queue-worker-kill")
    assert [f.name for f in faults_for(bench, "sync")] == ["model-freeze"]
    assert [f.name for f in faults_for(bench, "queue")] == ["model-freeze", "queue-worker-kill"]
    with pytest.raises(ValueError):
        BenchSettings(bench_faults="model-explode")


def test_the_ledger_waits_for_a_redelivery_then_the_retries() -> None:
    bench = BenchSettings(queue_visibility_timeout_s=60.0, queue_time_limit_s=15.0)
    attempt = bench.redis_timeout_s + bench.num_models * bench.model_timeout_s
    assert retry_budget_s(bench, attempt) == pytest.approx(4 * attempt + 0.2 + 0.4 + 0.8)
    assert ledger_wait_s(bench) == pytest.approx(60.0 + max(15.0, retry_budget_s(bench, attempt)) + 10.0)
    assert ledger_wait_s(BenchSettings(broker_url=AMQP)) < ledger_wait_s(bench)  # RabbitMQ redelivers at once


def test_faults_run_in_full_and_when_asked_never_in_smoke_or_quick_by_default() -> None:
    assert "faults" not in BenchSettings(bench_profile="smoke").experiments
    assert "faults" not in BenchSettings(bench_profile="quick").experiments
    assert "faults" in BenchSettings(bench_profile="full").experiments
    assert BenchSettings(bench_profile="full", experiments="locust").experiments == ["locust"]
    assert BenchSettings(experiments="faults").experiments == ["faults"]
    for profile in ("smoke", "quick", "full"):
        bench = BenchSettings(bench_profile=profile)
        assert bench.bench_faults_window_s > 0 and bench.bench_faults_recover_s > 0
        assert run_seconds(bench) > bench.bench_faults_window_s


def test_the_plan_includes_the_faults_only_when_they_run() -> None:
    quick = BenchSettings(bench_profile="quick", experiments="locust")
    with_faults = BenchSettings(bench_profile="quick", experiments="locust,faults")
    assert planned_faults_s(with_faults) > 0
    assert planned_duration_s(with_faults) == pytest.approx(
        planned_duration_s(quick) + planned_faults_s(with_faults)
    )
    longer = BenchSettings(bench_profile="quick", experiments="faults", bench_faults_recover_s=60)
    assert planned_faults_s(longer) > planned_faults_s(
        BenchSettings(bench_profile="quick", experiments="faults")
    )
    # the queue's redeliveries after a dead worker wait for the Redis broker's visibility timeout
    shorter = BenchSettings(bench_profile="quick", experiments="faults", queue_visibility_timeout_s=25)
    assert planned_faults_s(shorter) < planned_faults_s(
        BenchSettings(bench_profile="quick", experiments="faults")
    )


def test_the_embedded_redis_logs_its_writes_unless_told_not_to(tmp_path: Path) -> None:
    argv = embedded.command("redis-server", "127.0.0.1", 6399, tmp_path, persist=False, aof="everysec")
    assert argv[argv.index("--appendonly") + 1] == "yes"
    assert argv[argv.index("--appendfsync") + 1] == "everysec"
    off = embedded.command("redis-server", "127.0.0.1", 6399, tmp_path, persist=False, aof="off")
    assert off[off.index("--appendonly") + 1] == "no" and "--appendfsync" not in off
    (tmp_path / "appendonlydir").mkdir()
    (tmp_path / "appendonlydir" / "x.aof").write_text("x")
    (tmp_path / "appendonly.aof").write_text("x")
    (tmp_path / "dump.rdb").write_text("x")
    embedded.remove_aof(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["dump.rdb"]


@pytest.mark.parametrize(
    ("pool", "cancel"), [("threads", False), ("solo", False), ("prefork", True), ("gevent", True)]
)
def test_only_a_pool_that_can_stop_a_task_cancels_it_on_a_lost_connection(pool: str, cancel: bool) -> None:
    """The threads pool cannot stop a running task: asking it to made Celery stop consuming for good on
    a broker restart (found by the faults experiment)."""
    config = celery_config(BenchSettings(queue_worker_pool=pool))
    assert config["worker_cancel_long_running_tasks_on_connection_loss"] is cancel


def test_the_runs_of_a_task_are_counted_under_the_queues_prefix() -> None:
    bench = BenchSettings(redis_key_prefix="p:")
    assert runs_key(bench, "abc") == "p:queue:runs:abc"
    assert BenchSettings().queue_count_runs is False  # only the faults experiment's stacks count them


def test_a_result_is_stored_again_while_the_result_store_is_down() -> None:
    """A task that ran while Redis restarted was acked without its result (it stayed STARTED): the worker
    now retries storing it, for a bounded time."""
    config = celery_config(BenchSettings())
    assert config["result_backend_always_retry"] is True
    assert 10 <= config["result_backend_max_retries"] <= 100
    assert config["result_backend_max_sleep_between_retries_ms"] <= 5000


def test_no_prefetch_reduction_after_a_reconnect() -> None:
    """Celery's prefetch reduction after a reconnect blocked the worker's event loop on a basic.qos after a
    RabbitMQ restart under load: it never consumed again."""
    assert celery_config(BenchSettings())["worker_enable_prefetch_count_reduction"] is False
