"""``python -m benchmark.containers test|up|down|wheels|standin`` (``make docker-test``, ``make
podman-up``, ``make podman-down``, ``make docker-wheels``).

``test``: the stand-in base (built when missing), the wheel folder, every image built, the stack
started under podman on the host network with the port set of docker/host-network.env, every health
check waited for, the README's curl calls, a short load per scoring handler, then everything removed
(containers, network, podman's API service), whatever failed. The run's files (the compose file run,
build and container logs, Locust's CSVs, summary.json) go to results/docker-test/<time>/.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmark.containers.checks import port_map, readme_calls, run_curl, run_load
from benchmark.containers.podman import HealthTicker, api_service
from benchmark.containers.settings import HOST_NETWORK_ENV, ContainerTestSettings
from benchmark.containers.stack import ComposeStack, host_network_env
from benchmark.containers.standin import ensure_python_image
from benchmark.containers.wheels import make_wheels
from benchmark.load import USER_CLASSES

TOOLS = ("podman", "docker-compose", "curl")


@contextmanager
def exclusive_load_lock(path: Path | None) -> Iterator[None]:
    """``DOCKER_TEST_LOAD_LOCK``, held as ``flock -x`` would: the stack's start and its load are
    CPU-heavy and must not overlap another benchmark that takes the same lock. None: no lock."""
    if path is None:
        yield
        return
    with path.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def step(summary: dict[str, Any], name: str, t0: float) -> None:
    summary.setdefault("seconds", {})[name] = round(time.monotonic() - t0, 1)
    print(f"docker-test: {name} done ({summary['seconds'][name]} s)", flush=True)


def test(settings: ContainerTestSettings) -> int:
    missing = [tool for tool in TOOLS if not shutil.which(tool)]
    if missing:
        print(
            f"docker-test needs {', '.join(missing)} (apt-get install podman docker-compose curl)",
            file=sys.stderr,
        )
        return 2
    run_dir = settings.results_dir / time.strftime("%Y%m%d-%H%M%S")
    run_dir.mkdir(parents=True)
    summary: dict[str, Any] = {"run_dir": str(run_dir), "ok": False}
    ports = host_network_env(HOST_NETWORK_ENV)
    summary["ports"] = ports
    t_all = time.monotonic()
    try:
        t0 = time.monotonic()
        python_image = ensure_python_image(settings, run_dir / "build-python-standin.log")
        step(summary, "python base", t0)
        t0 = time.monotonic()
        summary["wheels"] = len(make_wheels())
        step(summary, "wheels", t0)
        with api_service(run_dir) as docker_host:
            stack = ComposeStack(settings, docker_host, ports, run_dir)
            stack.render()
            t0 = time.monotonic()
            stack.build(python_image)
            step(summary, "images built", t0)
            t0 = time.monotonic()
            with exclusive_load_lock(settings.load_lock):
                step(summary, "waited for the load lock", t0)
                try:
                    with HealthTicker(settings.project):
                        t0 = time.monotonic()
                        stack.up()
                        stack.wait_healthy()
                        step(summary, "stack healthy", t0)
                        t0 = time.monotonic()
                        summary["curl"] = {c.readme: run_curl(c)[:200] for c in readme_calls(port_map(ports))}
                        step(summary, "README calls", t0)
                        t0 = time.monotonic()
                        summary["load"] = {
                            arch: run_load(
                                arch, ports, run_dir / "load", settings.load_users, settings.load_s
                            )
                            for arch in USER_CLASSES
                        }
                        step(summary, "load", t0)
                finally:
                    stack.save_logs()
                    t0 = time.monotonic()
                    left = stack.down()
                    step(summary, "removed", t0)
                    if left:
                        raise RuntimeError(f"containers left behind: {left}")
        summary["ok"] = True
        return 0
    except Exception as exc:  # reported and recorded; the clean-up above has run
        summary["error"] = f"{type(exc).__name__}: {exc}"
        print(f"docker-test FAILED: {summary['error']} (files in {run_dir})", file=sys.stderr)
        return 1
    finally:
        summary["seconds"] = {**summary.get("seconds", {}), "total": round(time.monotonic() - t_all, 1)}
        (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        if summary["ok"]:
            print(f"docker-test passed in {summary['seconds']['total']} s: {run_dir}")


def up(settings: ContainerTestSettings) -> int:
    """The test's stack started and left running (``make podman-up``): removed again if it does not
    get healthy. Its health is not checked any more once it is up (see :class:`HealthTicker`)."""
    run_dir = settings.results_dir / (time.strftime("%Y%m%d-%H%M%S") + "-up")
    run_dir.mkdir(parents=True)
    ports = host_network_env(HOST_NETWORK_ENV)
    python_image = ensure_python_image(settings)
    make_wheels()
    with api_service(run_dir) as docker_host:
        stack = ComposeStack(settings, docker_host, ports, run_dir, hermetic=False)
        stack.render()
        stack.build(python_image)
        try:
            with HealthTicker(settings.project):
                stack.up()
                stack.wait_healthy()
        except BaseException:
            stack.save_logs()
            stack.down()
            raise
    listing = " ".join(f"{k}={v}" for k, v in ports.items())
    print(f"the stack is up on 127.0.0.1 ({listing}); files in {run_dir}")
    print("for a runner: set -a; . docker/host-network.env; set +a   then make podman-down")
    return 0


def down(settings: ContainerTestSettings) -> int:
    run_dir = settings.results_dir / (time.strftime("%Y%m%d-%H%M%S") + "-down")
    run_dir.mkdir(parents=True)
    with api_service(run_dir) as docker_host:
        stack = ComposeStack(settings, docker_host, host_network_env(HOST_NETWORK_ENV), run_dir)
        stack.render()
        stack.save_logs()
        left = stack.down()
    if left:
        print(f"containers left behind: {left}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmark.containers", description=__doc__)
    parser.add_argument("command", choices=["test", "up", "down", "wheels", "standin"])
    args = parser.parse_args(argv)
    # SIGTERM (a CI timeout, kill): unwound like Ctrl-C, so the stack is removed on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    settings = ContainerTestSettings()
    if args.command == "wheels":
        print(f"{len(make_wheels())} wheels in docker/wheels/")
        return 0
    if args.command == "standin":
        print(ensure_python_image(settings))
        return 0
    if args.command == "up":
        return up(settings)
    if args.command == "down":
        return down(settings)
    return test(settings)


if __name__ == "__main__":
    sys.exit(main())
