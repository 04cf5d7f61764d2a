"""The settings of ``make docker-test`` (one object per process, from the environment)."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parents[2]
CONTAINERS_CONF = ROOT / "docker/podman/containers.conf"
HOST_NETWORK_ENV = ROOT / "docker/host-network.env"
WHEELS_DIR = ROOT / "docker/wheels"
COMPOSE_FILES = (ROOT / "docker-compose.yml", ROOT / "docker-compose.host.yml")
STANDIN_DOCKERFILE = ROOT / "docker/python-standin.Dockerfile"
BASE_DOCKERFILE = ROOT / "docker/base.Dockerfile"


class ContainerTestSettings(BaseSettings):
    """``DOCKER_TEST_*`` variables, and the image names shared with the Makefile and compose."""

    model_config = SettingsConfigDict(env_prefix="DOCKER_TEST_", extra="ignore")

    image_prefix: str = Field(
        "scoring-bench", validation_alias=AliasChoices("IMAGE_PREFIX", "DOCKER_TEST_IMAGE_PREFIX")
    )
    image_tag: str = Field("latest", validation_alias=AliasChoices("IMAGE_TAG", "DOCKER_TEST_IMAGE_TAG"))
    python_image: str = Field(
        "localhost/scoring-bench-python:3.11-standin",
        description="The Python base the images build on: the stand-in, built when missing.",
    )
    debian_image: str = Field(
        "localhost/scoring-bench-debian:bookworm", description="The debootstrap root file system, imported."
    )
    debian_suite: str = "bookworm"
    debian_mirror: str = "http://deb.debian.org/debian"
    project: str = Field("scoring-bench-test", description="The compose project name of the test stack.")
    health_timeout_s: float = Field(300.0, description="How long the stack may take to be healthy.")
    load_s: int = Field(10, description="Seconds of load against each scoring handler.")
    load_users: int = Field(8, description="Locust users of that load.")
    results_dir: Path = ROOT / "results/docker-test"
    load_lock: Path | None = Field(
        None,
        description="A lock file held exclusively (flock) while the stack starts and is loaded, for a "
        "machine where other benchmarks take the same lock (ours: /tmp/scoring-bench-load.lock); "
        "unset: none.",
    )

    def image(self, name: str) -> str:
        """An image of the project: ``${IMAGE_PREFIX}-<name>:${IMAGE_TAG}``, as compose names it."""
        return f"{self.image_prefix}-{name}:{self.image_tag}"
