"""The wheel folder of an air-gapped image build (docker/wheels/, ``PIP_SOURCE=wheels``).

Made on the host by the project's own pip: every runtime dependency of pyproject.toml at its
version in constraints.txt, pip/setuptools/wheel, and meinheld built with ``--no-deps
--no-build-isolation`` as ``make install`` installs it. pip resolves environment markers for the
interpreter it runs on: a dependency that only older 3.11 releases need (redis's async-timeout
below 3.11.3; Debian bookworm has 3.11.2) would be missing, so the markers of every wheel's
requirements are evaluated for the earliest 3.11 as well, and what they add is fetched too.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from email.parser import HeaderParser
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from benchmark.containers.settings import ROOT, WHEELS_DIR

TARGET = (3, 11)
EARLIEST = {"python_version": "3.11", "python_full_version": "3.11.0", "extra": ""}


def _pip(*args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args],
        cwd=ROOT,
        check=True,
    )


def _project(wheel: Path) -> str:
    return canonicalize_name(wheel.name.split("-")[0])


def _requirements(wheel: Path) -> list[Requirement]:
    with zipfile.ZipFile(wheel) as zf:
        meta = next(n for n in zf.namelist() if re.fullmatch(r"[^/]+\.dist-info/METADATA", n))
        headers = HeaderParser().parsestr(zf.read(meta).decode())
    return [Requirement(r) for r in headers.get_all("Requires-Dist") or []]


def missing_for_earliest(folder: Path) -> list[str]:
    """Requirements some 3.11 release needs that no wheel of the folder provides."""
    have = {_project(w) for w in folder.glob("*.whl")}
    needed = {
        str(req).split(";")[0]
        for wheel in folder.glob("*.whl")
        for req in _requirements(wheel)
        if canonicalize_name(req.name) not in have and req.marker and req.marker.evaluate(EARLIEST)
    }
    return sorted(needed)


def make_wheels(folder: Path = WHEELS_DIR) -> list[Path]:
    if sys.version_info[:2] != TARGET:
        raise RuntimeError(
            f"the images run Python {TARGET[0]}.{TARGET[1]}: make the wheels with a {TARGET[0]}.{TARGET[1]} "
            f"virtualenv (this is {sys.version.split()[0]}; make PYTHON=python3.11 ...)"
        )
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.whl"):  # only the pinned versions, none left from earlier pins
        old.unlink()
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as req:
        req.write("\n".join(deps) + "\n")
        req.flush()
        _pip(
            "wheel", "-c", "constraints.txt", "-r", req.name, "pip", "setuptools", "wheel", "-w", str(folder)
        )
    _pip("wheel", "-c", "constraints.txt", "--no-deps", "--no-build-isolation", "meinheld", "-w", str(folder))
    for _ in range(3):
        extra = missing_for_earliest(folder)
        if not extra:
            break
        _pip("wheel", "-c", "constraints.txt", *extra, "-w", str(folder))
    return sorted(folder.glob("*.whl"))
