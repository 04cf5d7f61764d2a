"""The environment every process of the stack (and every load generator) is started with.

One definition: the settings a process must read (every setting replaced by the resolved value, so
nothing stale leaks in from the parent) and the project on ``PYTHONPATH`` (the services, the Celery
worker and Locust import the project from the work tree, as the containers do from ``/app``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from scoring_bench.core.settings import Settings

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def with_project_path(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` with the project first on ``PYTHONPATH``."""
    path = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
    return {**env, "PYTHONPATH": path}


def process_env(
    settings: Settings, base: Mapping[str, str] | None = None, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment of a child process: ``base`` (default: this process's) with every setting
    replaced by ``settings``' value, the project on ``PYTHONPATH``, then ``extra``."""
    env = with_project_path(settings.child_env(os.environ if base is None else base))
    env.update(extra or {})
    return env
