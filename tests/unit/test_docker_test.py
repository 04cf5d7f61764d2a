"""make docker-test's own logic, without podman (tests/unit/test_containers.py checks the files;
the real run is `make docker-test`): the README's calls it finds and aims at the test's ports, the
wheel folder's marker closure, and the compose file it runs."""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
import yaml

from benchmark.containers import checks, wheels
from benchmark.containers.settings import HOST_NETWORK_ENV, ContainerTestSettings
from benchmark.containers.stack import ComposeStack, host_network_env

PORTS = host_network_env(HOST_NETWORK_ENV)


def test_the_port_map_sends_every_default_port_to_the_test_set() -> None:
    mapping = checks.port_map(PORTS)
    assert mapping[5001] == 15001 and mapping[8002] == 18002 and mapping[8003] == 18003
    assert set(mapping.values()) == {int(v) for k, v in PORTS.items() if k.endswith("_PORT")} - {16379}


def test_the_readme_calls_are_found_and_aimed_at_the_test_ports() -> None:
    calls = checks.readme_calls(checks.port_map(PORTS))
    urls = [next(a for a in c.argv if a.startswith("http")) for c in calls]
    assert urls, "no curl call found in README.md"
    assert all(u.startswith("http://127.0.0.1:1") for u in urls), urls
    # every prediction the README shows, and a queue call read with its headers (-i)
    assert {u.split("/api/")[1] for u in urls if "predict" in u} >= {
        "v1/ml/sync/predict",
        "v1/ml/async/predict",
        "v1/ml/queue/predict?wait_ms=1000",
    }
    assert any("-i" in c.argv for c in calls)
    assert any(c.grep for c in calls)  # the metrics lines: `curl ... | grep PATTERN`


def test_a_readme_call_on_another_port_is_left_alone(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text('curl "http://localhost:9999/x"\ncurl -s http://127.0.0.1:5000/metrics | grep up\n')
    calls = checks.readme_calls({5000: 15000}, readme)
    assert [c.argv for c in calls] == [["-s", "http://127.0.0.1:15000/metrics"]]
    assert calls[0].grep == "up"


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl (CI installs it)")
def test_run_curl_judges_the_answer(tmp_path: Path) -> None:
    """A call fails on a body that is not JSON or lacks the grep pattern, and on a refused connection."""
    page = tmp_path / "page"
    page.write_text('{"status":"OK"}')
    ok = checks.CurlCall("readme line", [f"file://{page}"], None)
    assert checks.run_curl(ok) == '{"status":"OK"}'
    with pytest.raises(RuntimeError, match="not JSON"):
        page.write_text("<html>")
        checks.run_curl(ok)
    with pytest.raises(RuntimeError, match="no 'queue_tasks_'"):
        checks.run_curl(checks.CurlCall("metrics", [f"file://{page}"], "queue_tasks_"))
    with pytest.raises(RuntimeError, match="curl exit"):
        checks.run_curl(checks.CurlCall("refused", ["http://127.0.0.1:9/"], None))


def _wheel(folder: Path, name: str, requires: list[str]) -> None:
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n" + "".join(
        f"Requires-Dist: {r}\n" for r in requires
    )
    with zipfile.ZipFile(folder / f"{name}-1.0-py3-none-any.whl", "w") as zf:
        zf.writestr(f"{name}-1.0.dist-info/METADATA", meta)


def test_the_wheel_folder_covers_every_python_3_11(tmp_path: Path) -> None:
    """What a 3.11 older than the host's needs (redis's async-timeout below 3.11.3) is named;
    what no 3.11 needs, an extra, or a wheel already there is not."""
    _wheel(
        tmp_path,
        "redis",
        [
            "async-timeout>=4.0.3; python_full_version < '3.11.3'",
            "hiredis>=3; extra == 'hiredis'",
            "tomli; python_version < '3.11'",
            "present",
        ],
    )
    _wheel(tmp_path, "present", [])
    assert wheels.missing_for_earliest(tmp_path) == ["async-timeout>=4.0.3"]
    _wheel(tmp_path, "async_timeout", [])
    assert wheels.missing_for_earliest(tmp_path) == []


@pytest.mark.skipif(
    subprocess.run(["which", "docker-compose"], capture_output=True).returncode != 0,
    reason="needs docker-compose (CI installs it)",
)
def test_the_compose_file_run_has_no_published_ports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The merged file docker-test runs: every default service on the host network, no `ports`
    (docker-py refuses them there), the settings at the test's port set, none from this shell
    (podman-up passes them on, as make docker-up does)."""
    monkeypatch.setenv("BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
    passing_on = ComposeStack(ContainerTestSettings(), "unix:///x.sock", PORTS, tmp_path, hermetic=False)
    assert passing_on.render()["services"]["queue-worker"]["environment"]["BROKER_URL"].startswith("amqp:")
    stack = ComposeStack(ContainerTestSettings(), "unix:///x.sock", PORTS, tmp_path)
    config = stack.render()
    assert yaml.safe_load(stack.rendered.read_text()) == config
    default_stack = [n for n, e in config["services"].items() if not e.get("profiles")]
    assert {"redis", "seed", "model-sync", "scoring-sync", "queue-worker", "scoring-queue"} <= set(
        default_stack
    )
    for name in default_stack:
        entry = config["services"][name]
        assert entry["network_mode"] == "host" and "ports" not in entry, name
    env = config["services"]["queue-worker"]["environment"]
    assert env["BROKER_URL"] is None  # unset: the queue's broker is the stack's own Redis
    assert env["SCORING_ASYNC_PORT"] == PORTS["SCORING_ASYNC_PORT"]
    assert config["services"]["scoring-sync"]["image"] == "scoring-bench-scoring-sync:latest"
