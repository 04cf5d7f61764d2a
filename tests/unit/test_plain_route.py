"""The async handler's predict route: a plain Starlette route that names itself in the scope (the metrics'
route label), and answers every other method with a 405."""

from __future__ import annotations

from starlette.routing import Match

from scoring_bench.core.endpoints import ASYNC_PREDICT_PATH
from scoring_bench.service.fastapi_adapter import PlainRoute


async def endpoint(_: object) -> None:
    return None


def scope(method: str, path: str = ASYNC_PREDICT_PATH) -> dict[str, object]:
    return {"type": "http", "method": method, "path": path, "root_path": ""}


def test_the_route_names_itself_for_the_metrics() -> None:
    route = PlainRoute(ASYNC_PREDICT_PATH, endpoint, methods=["POST"])
    match, child = route.matches(scope("POST"))
    assert match is Match.FULL and child["route"] is route and route.path == ASYNC_PREDICT_PATH
    match, child = route.matches(scope("GET"))
    assert match is Match.PARTIAL and child["route"] is route  # a 405, labelled with the route
    assert route.matches(scope("POST", "/elsewhere")) == (Match.NONE, {})
