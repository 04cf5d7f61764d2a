"""What the FastAPI services share: JSON errors, body limits, responses.

Handlers read the raw body and validate it with :mod:`scoring_bench.core.schemas`
(the same code the Flask services run); their OpenAPI document is the shared one of
:mod:`scoring_bench.core.openapi`, so ``/docs`` can send requests.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

import orjson
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.telemetry import TelemetryConfig
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect
from starlette.routing import Match, Route

from scoring_bench.core.endpoints import OPENAPI_PATH
from scoring_bench.core.errors import (
    InvalidBody,
    PayloadTooLarge,
    RequestTimeout,
    ScoringError,
    error_body,
    http_error,
)
from scoring_bench.core.settings import Settings
from scoring_bench.service import metrics

log = logging.getLogger("scoring_bench")
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
# FastAPI's native OpenTelemetry, off: the services' metrics are Prometheus's (scoring_bench.service.metrics),
# and with it on FastAPI looked up the global tracer, meter and logger providers on every request.
NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, headers=headers, media_type="application/json")


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refused with 413 as soon as it is known to exceed ``limit``; 408 when it stops
    coming (the client went away, or the server's guard found it too slow:
    scoring_bench.service.uvicorn_guard)."""
    try:
        return await _read_body(request, limit)
    except ClientDisconnect:
        raise RequestTimeout("the body was not received: the client was too slow or went away") from None


async def _read_body(request: Request, limit: int) -> bytes:
    length = request.headers.get("content-length")
    if length is not None:
        if not (length.isascii() and length.isdigit()):  # "²".isdigit() is true too
            raise InvalidBody(f"invalid Content-Length header: {length!r}")
        if int(length) > limit:
            raise PayloadTooLarge(f"the body is larger than {limit} bytes")
        return await request.body()
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def receive_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """:func:`read_body` on the ASGI messages themselves (an endpoint without a Request): the same
    400 for a malformed Content-Length, 413 over ``limit``, 408 when the client goes."""
    length = None
    for name, value in scope["headers"]:
        if name == b"content-length":
            length = value.decode("latin-1")
            break
    if length is not None:
        if not (length.isascii() and length.isdigit()):  # "²".isdigit() is true too
            raise InvalidBody(f"invalid Content-Length header: {length!r}")
        if int(length) > limit:
            raise PayloadTooLarge(f"the body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise RequestTimeout("the body was not received: the client was too slow or went away")
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the body is larger than {limit} bytes")
        if not message.get("more_body", False):
            return b"".join(chunks) + chunk if chunks else chunk
        chunks.append(chunk)


JSON_CONTENT_TYPE = (b"content-type", b"application/json")


async def send_json(
    send: Send, body: Any, status: int = 200, headers: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    """The response :func:`json_response` makes (the same head and bytes), sent without a Response object."""
    payload = orjson.dumps(body)
    head = [(b"content-length", str(len(payload)).encode()), JSON_CONTENT_TYPE, *headers]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": payload})


class Endpoint:
    """An ASGI endpoint for a Route: a plain function would be wrapped in a Request and a Response."""

    def __init__(self, handle: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.handle = handle

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        return self.handle(scope, receive, send)


class DirectRoute:
    """A middleware, the innermost, that takes one route's requests (its path exactly, its one method, no
    root path) straight to its endpoint, past the exception middleware, the router (which tries the routes
    in order) and the route's own match. The route stays first in the router for everything else (another
    method: 405). A ScoringError is answered as the app's handler answers it; anything else goes on to
    ServerErrorMiddleware (the 500), as from the router."""

    def __init__(self, app: ASGIApp, route: PlainRoute, method: str) -> None:
        self.app = app
        self.route = route
        self.path = route.path
        self.method = method
        endpoint = route.endpoint
        self.handle = endpoint.handle if isinstance(endpoint, Endpoint) else endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] != self.path
            or scope["method"] != self.method
            or scope.get("root_path")
        ):
            await self.app(scope, receive, send)
            return
        scope["route"] = self.route  # what the metrics label the request with, as the router would set
        try:
            await self.handle(scope, receive, send)
        except ScoringError as exc:
            await send_json(send, exc.body(), exc.status)


def add_direct_route(
    app: FastAPI, path: str, method: str, handle: Callable[[Scope, Receive, Send], Awaitable[None]]
) -> None:
    """``handle`` (an ASGI callable) serves ``method path``: first in the router, and taken there directly
    (:class:`DirectRoute`). Before the app starts: its middleware stack is built on the first request."""
    route = PlainRoute(path, Endpoint(handle), methods=[method])
    app.router.routes.insert(0, route)
    app.user_middleware.append(Middleware(DirectRoute, route=route, method=method))  # innermost


class PlainRoute(Route):
    """A Starlette route (no dependency solving: the handler takes the Request and parses it itself) that
    names itself in the scope as FastAPI's own routes do, so the metrics label its requests with its path
    (FastAPI's router, unlike Starlette's, leaves that to the route)."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        if match is not Match.NONE:
            child_scope["route"] = self
        return match, child_scope


def create_app(
    openapi: dict[str, Any],
    index: dict[str, Any],
    settings: Settings,
    lifespan: Callable[..., Any] | None = None,
) -> FastAPI:
    """A FastAPI app answering every error as JSON, with its index page and metrics.

    Its ``/openapi.json`` (and so ``/docs``) is ``openapi``, the document of
    scoring_bench.core.openapi that its Flask twin serves too, not one FastAPI derives from the
    routes: the handlers parse their bodies and parameters themselves, with the shared code."""
    app = FastAPI(
        title=openapi["info"]["title"], lifespan=lifespan, openapi_url=OPENAPI_PATH, telemetry=NO_TELEMETRY
    )
    app.openapi = lambda: openapi  # type: ignore[method-assign]
    install_metrics(app, settings, index["service"])

    @app.exception_handler(ScoringError)
    async def _scoring_error(_: Request, exc: ScoringError) -> Response:
        return json_response(exc.body(), exc.status)

    @app.exception_handler(HTTPException)
    async def _http_error(_: Request, exc: HTTPException) -> Response:
        headers = dict(exc.headers) if exc.headers else None
        return json_response(http_error(exc.status_code, str(exc.detail)), exc.status_code, headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> Response:
        details = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]
        return json_response(error_body("invalid_request", "the request is invalid", details), 422)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> Response:
        log.exception("unexpected error")
        return json_response(error_body("internal_error", f"{type(exc).__name__}: {exc}"), 500)

    @app.get("/", include_in_schema=False)
    async def _index() -> Response:
        return json_response(index)

    return app


def install_metrics(app: FastAPI, settings: Settings, service: str) -> None:
    """``GET /metrics`` (this process's tallies written on the loop, then the multiprocess files and the
    queue's broker read in the thread pool, never on the event loop), and every other request timed by a
    pure ASGI middleware (Starlette's BaseHTTPMiddleware costs a task and a stream per request)."""
    recorder = metrics.recorder(settings, service, on_loop=True)
    if recorder is None:
        return

    metrics.install_process_collector(service)

    @app.get(metrics.METRICS_PATH, include_in_schema=False)
    async def _metrics(request: Request) -> Response:
        metrics.flush_all()
        names = request.query_params.getlist("name[]")
        return Response(await run_in_threadpool(metrics.render, names), media_type=metrics.CONTENT_TYPE)

    app.add_middleware(MetricsMiddleware, recorder=recorder)


class MetricsMiddleware:
    """Times each HTTP request and labels it with the route template the router matched
    (``scope["route"]``, set by the router on the scope this middleware passed down)."""

    def __init__(self, app: ASGIApp, recorder: metrics.ServiceMetrics) -> None:
        self.app = app
        self.recorder = recorder

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] == metrics.METRICS_PATH:
            await self.app(scope, receive, send)
            return
        status = 500  # unless a response starts: an exception reaches ServerErrorMiddleware

        async def send_and_see(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        started = time.perf_counter()
        self.recorder.request_started()
        try:
            await self.app(scope, receive, send_and_see)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or metrics.UNMATCHED
            self.recorder.request_finished(path, scope["method"], status, time.perf_counter() - started)
