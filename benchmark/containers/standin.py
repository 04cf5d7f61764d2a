"""The stand-in for the official ``python:3.11-slim-bookworm`` image, where registry images cannot
be pulled: a ``debootstrap --variant=minbase`` Debian root file system imported into podman, and on
it Debian's python3.11 (docker/python-standin.Dockerfile). Built once and kept in podman's image
store: each step runs only when its image is missing (``podman rmi`` one to rebuild it)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from benchmark.containers.podman import engine_env, image_exists, podman
from benchmark.containers.settings import STANDIN_DOCKERFILE, ContainerTestSettings


def import_debian(settings: ContainerTestSettings) -> None:
    # /usr/sbin: where Debian installs it, not on every PATH
    debootstrap = shutil.which("debootstrap") or shutil.which("debootstrap", path="/usr/sbin:/sbin")
    if not debootstrap:
        raise RuntimeError("the stand-in base needs debootstrap (apt-get install debootstrap)")
    with tempfile.TemporaryDirectory(prefix="scoring-bench-debootstrap-", dir="/var/tmp") as tmp:
        root = Path(tmp) / "rootfs"
        subprocess.run(
            [debootstrap, "--variant=minbase", settings.debian_suite, str(root), settings.debian_mirror],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        for deb in (root / "var/cache/apt/archives").glob("*.deb"):  # the downloaded packages
            deb.unlink()
        tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        assert tar.stdout is not None
        imported = subprocess.run(
            ["podman", "import", "-", settings.debian_image],
            stdin=tar.stdout,
            env=engine_env(),
            capture_output=True,
            text=True,
        )
        tar.stdout.close()
        if tar.wait() != 0 or imported.returncode != 0:
            raise RuntimeError(f"podman import of the debootstrap root failed: {imported.stderr}")


def ensure_python_image(settings: ContainerTestSettings, log: Path | None = None) -> str:
    """The stand-in Python image's name, built if missing (about a minute: debootstrap, apt);
    podman's build output to ``log`` if given."""
    if image_exists(settings.python_image):
        return settings.python_image
    if not image_exists(settings.debian_image):
        import_debian(settings)
    with tempfile.TemporaryDirectory() as context:  # the Dockerfile needs no file
        podman(
            "build",
            "--network",
            "host",
            "-f",
            str(STANDIN_DOCKERFILE),
            "--build-arg",
            f"DEBIAN_IMAGE={settings.debian_image}",
            "-t",
            settings.python_image,
            context,
            capture=False,
            stdout=log.open("w") if log else None,
            stderr=subprocess.STDOUT if log else None,
        )
    return settings.python_image
