"""The folder layout is the architecture: each layer imports only the layers below it.

    scoring_bench.core  ←  scoring_bench.service  ←  scoring_bench.stack  ←  benchmark
            ↑                     ↑
      feature_store            api_*  (the services: core and service; their server configs: stack)

Every import counts, also one inside a function (a lazy import is still a dependency).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORE, SERVICE, STACK = "scoring_bench.core", "scoring_bench.service", "scoring_bench.stack"
API = (
    "api_model_sync",
    "api_model_async",
    "api_scoring_sync",
    "api_scoring_async",
    "api_scoring_queue",
    "api_scoring_minimal",
    "api_scoring_batched",
)
# What each layer may import of the project, besides itself.
ALLOWED: dict[str, set[str]] = {
    "scoring_bench": set(),  # the package itself: a docstring
    CORE: set(),
    "feature_store": {CORE},
    SERVICE: {CORE},
    STACK: {CORE, SERVICE, "feature_store"},
    **{api: {CORE, SERVICE, STACK} for api in API},
    "benchmark": {CORE, SERVICE, STACK, "feature_store"},
}
# The core is pure: no web framework, server, client or broker library.
IO_LIBRARIES = {
    "flask",
    "werkzeug",
    "fastapi",
    "starlette",
    "gunicorn",
    "uvicorn",
    "redis",
    "celery",
    "kombu",
    "aiohttp",
    "httpx",
    "requests",
    "urllib3",
    "prometheus_client",
    "locust",
    "psutil",
}


def layer_of(module: str) -> str | None:
    """The layer a module of the project belongs to (the longest matching prefix), None for a
    library."""
    matches = [layer for layer in ALLOWED if module == layer or module.startswith(layer + ".")]
    return max(matches, key=len) if matches else None


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(module: str, source: str, is_package: bool = False) -> list[tuple[int, str]]:
    """(line, module) of every import in a module's source, relative imports resolved."""
    found = []
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return found


def project_modules() -> list[tuple[str, str, bool]]:
    """(module, source, is a package) of every module of the project."""
    roots = ["scoring_bench", "feature_store", "benchmark", *API]
    files = sorted(p for root in roots for p in (ROOT / root).rglob("*.py"))
    return [(module_name(p), p.read_text(), p.name == "__init__.py") for p in files]


def violations(modules: list[tuple[str, str, bool]]) -> list[str]:
    problems = []
    for module, source, is_package in modules:
        layer = layer_of(module)
        assert layer is not None, f"{module} is in no layer"
        for line, imported in imports(module, source, is_package):
            target = layer_of(imported)
            where = f"{module}:{line} imports {imported}"
            if target is None:
                if layer == CORE and imported.split(".")[0] in IO_LIBRARIES:
                    problems.append(f"{where}: the core does no I/O")
            elif target != layer and target not in ALLOWED[layer]:
                problems.append(f"{where}: {layer} may not import {target}")
    return problems


def test_every_layer_imports_only_the_layers_below_it() -> None:
    assert violations(project_modules()) == []


def test_the_allowed_directions_have_no_cycle() -> None:
    def reaches(start: str, goal: str, seen: frozenset[str] = frozenset()) -> bool:
        return any(
            nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt}))
            for nxt in ALLOWED.get(start, ())
        )

    assert not [layer for layer in ALLOWED if reaches(layer, layer)]


@pytest.mark.parametrize(
    "module, source, expected",
    [
        (
            f"{CORE}.probe",
            "from scoring_bench.stack.servers import SERVICES\n",
            f"{CORE} may not import {STACK}",
        ),
        (f"{SERVICE}.probe", "import benchmark.stats\n", f"{SERVICE} may not import benchmark"),
        (f"{STACK}.probe", "def f():\n    from benchmark import cli\n", f"{STACK} may not import benchmark"),
        (f"{CORE}.probe", "from ..service import metrics\n", f"{CORE} may not import {SERVICE}"),
        (
            "feature_store.probe",
            "from scoring_bench.stack import supervisor\n",
            f"feature_store may not import {STACK}",
        ),
        (f"{CORE}.probe", "import redis.asyncio\n", "the core does no I/O"),
    ],
)
def test_a_wrong_import_is_caught(module: str, source: str, expected: str) -> None:
    found = violations([(module, source, False)])
    assert len(found) == 1 and expected in found[0], found
