"""The async handler's predict route: a plain Starlette route that names itself in the scope (the metrics'
route label), and answers every other method with a 405; taken directly from the middleware stack
(DirectRoute), with its body read from the ASGI messages."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.routing import Match

from scoring_bench.core.endpoints import ASYNC_PREDICT_PATH, index
from scoring_bench.core.errors import InvalidBody, PayloadTooLarge, RequestTimeout
from scoring_bench.core.settings import Settings
from scoring_bench.service import fastapi_adapter
from scoring_bench.service.fastapi_adapter import PlainRoute

CONTRACT = {"openapi": "3.1.0", "info": {"title": "t", "version": "1"}, "paths": {}}


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


# --- the direct route: the endpoint taken straight from the middleware stack, its body read from the messages


def messages(*chunks: bytes, disconnect: bool = False) -> Any:
    queue = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)
    ]
    if disconnect:
        queue = [*queue[:-1], {"type": "http.disconnect"}]

    async def receive() -> dict[str, object]:
        return queue.pop(0)

    return receive


def body_scope(length: str | None) -> dict[str, object]:
    headers = [(b"host", b"x")] + ([(b"content-length", length.encode())] if length is not None else [])
    return {**scope("POST"), "headers": headers}


def test_the_body_is_read_from_the_messages_with_the_request_s_limits() -> None:
    read = fastapi_adapter.receive_body
    assert asyncio.run(read(body_scope("6"), messages(b"abc", b"def"), 10)) == b"abcdef"
    assert asyncio.run(read(body_scope(None), messages(b"abc", b"", b"d"), 10)) == b"abcd"
    with pytest.raises(InvalidBody, match="Content-Length"):
        asyncio.run(read(body_scope("²"), messages(b"x"), 10))
    with pytest.raises(PayloadTooLarge):
        asyncio.run(read(body_scope("11"), messages(b"x"), 10))  # refused before reading
    with pytest.raises(PayloadTooLarge):
        asyncio.run(read(body_scope(None), messages(b"123456", b"123456"), 10))
    with pytest.raises(RequestTimeout):
        asyncio.run(read(body_scope("6"), messages(b"abc", b"def", disconnect=True), 10))


def direct_app() -> tuple[FastAPI, list[str]]:
    settings = Settings(metrics_enabled=False)
    app = fastapi_adapter.create_app(CONTRACT, index("unit-direct", "/p", docs=False), settings)
    seen: list[str] = []

    async def handle(scope: Any, receive: Any, send: Any) -> None:
        raw = await fastapi_adapter.receive_body(scope, receive, 100)
        seen.append(scope["route"].path)
        if raw == b"bad":
            raise InvalidBody("bad body")
        if raw == b"boom":
            raise RuntimeError("boom")
        await fastapi_adapter.send_json(
            send, {"got": raw.decode()}, headers=[(b"server-timing", b"total;dur=1")]
        )

    fastapi_adapter.add_direct_route(app, "/p", "POST", handle)
    return app, seen


def test_the_direct_route_answers_as_the_router_would() -> None:
    app, seen = direct_app()
    client = TestClient(app, raise_server_exceptions=False)
    ok = client.post("/p", content=b"hi")
    assert ok.status_code == 200 and ok.json() == {"got": "hi"}
    assert ok.headers["content-type"] == "application/json" and ok.headers["server-timing"] == "total;dur=1"
    bad = client.post("/p", content=b"bad")
    assert bad.status_code == InvalidBody("bad body").status and bad.json() == InvalidBody("bad body").body()
    boom = client.post("/p", content=b"boom")
    assert boom.status_code == 500 and boom.json()["error"] == "internal_error"
    assert client.post("/p", content=b"x" * 101).status_code == 413
    assert client.get("/p").status_code == 405  # another method: the route in the router
    assert seen == ["/p"] * 3


def test_the_router_still_serves_the_route_under_a_root_path() -> None:
    app, seen = direct_app()
    client = TestClient(app, root_path="/api", raise_server_exceptions=False)
    response = client.post("/p", content=b"hi")
    assert response.status_code == 200 and response.json() == {"got": "hi"} and seen == ["/p"]
    assert client.post("/p", content=b"bad").status_code == InvalidBody("x").status
