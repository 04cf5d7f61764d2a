"""The services' Redis clients (scoring_bench.service.redis_clients): on uvloop, a write to a connection
whose peer has gone is a redis ConnectionError (a 503 upstream), not uvloop's RuntimeError (a 500)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct

import pytest
import redis.exceptions
import uvloop

from scoring_bench.core.settings import Settings
from scoring_bench.service.redis_clients import ClosedAwareConnection, async_redis


async def _closed_connection() -> ClosedAwareConnection:
    """A connection whose peer reset it (as a killed Redis does): a real uvloop transport, closed."""

    async def reset_at_once(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with RST
        writer.transport.abort()

    server = await asyncio.start_server(reset_at_once, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    with contextlib.suppress(ConnectionResetError):
        await reader.read()
    deadline = asyncio.get_running_loop().time() + 5
    while not writer.transport.is_closing():
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.01)
    server.close()
    connection = ClosedAwareConnection(host="127.0.0.1", port=port)
    connection._reader, connection._writer = reader, writer
    return connection


def test_a_write_to_a_closed_uvloop_transport_is_a_connection_error() -> None:
    async def scenario() -> None:
        connection = await _closed_connection()
        with pytest.raises(redis.exceptions.ConnectionError):
            await connection.send_packed_command(b"PING\r\n", check_health=False)
        assert not connection.is_connected  # dropped, as any broken connection

    uvloop.run(scenario())


def test_redis_urls_get_the_connection_that_knows_it() -> None:
    async def scenario() -> None:
        client = async_redis(Settings(), "redis://127.0.0.1:6399/2")
        assert client.connection_pool.connection_class is ClosedAwareConnection
        tls = async_redis(Settings(), "rediss://127.0.0.1:6399/2")
        assert tls.connection_pool.connection_class is not ClosedAwareConnection  # its own TLS class
        await client.aclose()
        await tls.aclose()

    uvloop.run(scenario())
