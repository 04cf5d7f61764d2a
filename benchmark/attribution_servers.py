"""The attribution's ``servers`` study: the server apart from the framework (issue 15 §2).

Five configurations: the Flask handler on gunicorn gthread (the default), on gunicorn gevent ("sync code,
async I/O") and on granian (WSGI); the FastAPI handler on uvicorn (the default) and on granian (ASGI). A
stack runs both handlers, so one stack serves a Flask and a FastAPI configuration (:data:`STACKS`: the
defaults together, the two granians together, gevent alone): three stacks a round instead of five. Every
stack is started once per round (``BENCH_SERVERS_ROUNDS``), and the rounds rotate the stacks' order, so a
drift of the machine spreads over every configuration instead of falling on one.

Each configuration is measured as every attribution configuration is (:func:`benchmark.attribution.measure`):
p50 of ``BENCH_SERVERS_TIMEIT`` sequential requests at one user, then ``BENCH_ATTRIBUTION_USERS``
closed-loop users for ``BENCH_SERVERS_LOAD_S`` (throughput, and the stack's CPU per request over it).
``python -m benchmark.server_matrix`` runs this study alone. The analysis: benchmark/analysis/servers.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from benchmark.settings import BenchSettings

STUDY = "servers"


@dataclass(frozen=True)
class Server:
    """One framework on one server: the settings that choose the server, and the architecture it serves."""

    label: str  # the measurements' label of its rows
    framework: str
    server: str
    architecture: str
    overrides: dict[str, Any] = field(default_factory=dict)


FLASK_GTHREAD = Server(
    "Flask · gunicorn gthread",
    "Flask",
    "gunicorn gthread",
    "sync",
    {"scoring_sync_server": "gunicorn", "scoring_sync_worker_class": "gthread"},
)
FLASK_GEVENT = Server(
    "Flask · gunicorn gevent",
    "Flask",
    "gunicorn gevent",
    "sync",
    {"scoring_sync_server": "gunicorn", "scoring_sync_worker_class": "gevent"},
)
FLASK_GRANIAN = Server(
    "Flask · granian (WSGI)", "Flask", "granian", "sync", {"scoring_sync_server": "granian"}
)
FASTAPI_UVICORN = Server(
    "FastAPI · uvicorn", "FastAPI", "uvicorn", "async", {"scoring_async_server": "uvicorn"}
)
FASTAPI_GRANIAN = Server(
    "FastAPI · granian (ASGI)", "FastAPI", "granian", "async", {"scoring_async_server": "granian"}
)
# In the report's order.
SERVERS: tuple[Server, ...] = (FLASK_GTHREAD, FLASK_GEVENT, FLASK_GRANIAN, FASTAPI_UVICORN, FASTAPI_GRANIAN)
# The stacks of a round: each serves at most one Flask and one FastAPI configuration.
STACKS: tuple[tuple[Server, ...], ...] = (
    (FLASK_GTHREAD, FASTAPI_UVICORN),
    (FLASK_GRANIAN, FASTAPI_GRANIAN),
    (FLASK_GEVENT,),
)


@dataclass(frozen=True)
class StackPlan:
    """One stack of one round: its step (numbered on over the rounds), its servers and settings."""

    step: int
    round: int
    servers: tuple[Server, ...]

    @property
    def label(self) -> str:
        return " + ".join(server.label for server in self.servers)

    @property
    def overrides(self) -> dict[str, Any]:
        return {key: value for server in self.servers for key, value in server.overrides.items()}

    @property
    def architectures(self) -> tuple[str, ...]:
        return tuple(server.architecture for server in self.servers)

    @property
    def labels(self) -> dict[str, str]:
        """Each architecture's row label: the configuration it measures."""
        return {server.architecture: server.label for server in self.servers}


def plan(rounds: int) -> list[StackPlan]:
    """Every stack once per round; round r starts at the r-th stack (the order rotates)."""
    plans = []
    for rnd in range(rounds):
        for i in range(len(STACKS)):
            stack = STACKS[(i + rnd) % len(STACKS)]
            plans.append(StackPlan(rnd * len(STACKS) + i, rnd, stack))
    return plans


def bench_overrides(base: BenchSettings) -> dict[str, Any]:
    """The attribution knobs a servers measurement runs with: the study's own sizes."""
    return {
        "bench_attribution_timeit": base.bench_servers_timeit,
        "bench_attribution_load_s": base.bench_servers_load_s,
    }


def server_of_label(label: str) -> Server | None:
    return next((server for server in SERVERS if server.label == label), None)
