"""The container files, read and parsed: docker-compose.yml, the Dockerfiles, the Makefile and
monitoring/ (for tests/unit/test_containers.py and the entry points' integration test)."""

from __future__ import annotations

import io
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from dockerfile_parse import DockerfileParser

from benchmark.containers.stack import host_network_env

ROOT = Path(__file__).resolve().parent.parent
BASE_DOCKERFILE = "docker/base.Dockerfile"


@dataclass
class Files:
    compose: dict[str, Any]
    dockerfiles: dict[str, str]  # path (relative to ROOT) -> text
    prometheus: dict[str, Any]
    grafana_datasources: dict[str, Any]
    makefile: str
    host_override: dict[str, Any] = field(default_factory=dict)  # docker-compose.host.yml
    host_env: dict[str, str] = field(default_factory=dict)  # docker/host-network.env
    containers_conf: dict[str, Any] = field(default_factory=dict)  # docker/podman/containers.conf


def read_files() -> Files:
    dockerfiles = {
        str(p.relative_to(ROOT)): p.read_text()
        for p in sorted([*ROOT.glob("api_*/*Dockerfile"), *ROOT.glob("docker/*Dockerfile")])
    }
    return Files(
        compose=yaml.safe_load((ROOT / "docker-compose.yml").read_text()),
        dockerfiles=dockerfiles,
        prometheus=yaml.safe_load((ROOT / "monitoring/prometheus.yml").read_text()),
        grafana_datasources=yaml.safe_load(
            (ROOT / "monitoring/grafana/provisioning/datasources/prometheus.yml").read_text()
        ),
        makefile=(ROOT / "Makefile").read_text(),
        host_override=yaml.safe_load((ROOT / "docker-compose.host.yml").read_text()),
        host_env=host_network_env(ROOT / "docker/host-network.env"),
        containers_conf=tomllib.loads((ROOT / "docker/podman/containers.conf").read_text()),
    )


def parse(text: str) -> DockerfileParser:
    return DockerfileParser(fileobj=io.BytesIO(text.encode()))


def instructions(text: str, name: str, final_stage_only: bool = False) -> list[str]:
    structure = parse(text).structure
    if final_stage_only:
        last_from = max(i for i, ins in enumerate(structure) if ins["instruction"] == "FROM")
        structure = structure[last_from:]
    return [ins["value"] for ins in structure if ins["instruction"] == name]


def env_of(text: str) -> dict[str, str]:
    """ENV of the final stage (what a container of the image starts with)."""
    return parse(text).envs


def exec_form(value: str) -> list[str] | None:
    try:
        argv = json.loads(value)
    except ValueError:
        return None
    return argv if isinstance(argv, list) and all(isinstance(a, str) for a in argv) else None


def healthcheck_argv(value: str) -> list[str] | None:
    """The exec-form command of a HEALTHCHECK instruction (after its options)."""
    _, sep, cmd = value.partition("CMD ")
    return exec_form(cmd.strip()) if sep else None


def compose_service(files: Files, name: str) -> dict[str, Any]:
    return files.compose.get("services", {}).get(name) or {}


def dockerfile_of(files: Files, name: str) -> str | None:
    build = compose_service(files, name).get("build") or {}
    return build.get("dockerfile") if isinstance(build, dict) else None
