"""Outages are told as one line, recognised from the exceptions the real drivers raise."""

from __future__ import annotations

import socket

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy import text

from impasto.bots.service.outages import DATABASE_DOWN, QUEUE_DOWN, outage_line
from impasto.storage.db import make_engine


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the block ends: nothing listens there


async def test_a_database_that_is_down() -> None:
    engine = make_engine(f"postgresql://postgres@127.0.0.1:{_closed_port()}/postgres")
    try:
        with pytest.raises(OSError, match=r"refused|Connect call failed") as caught:
            async with engine.connect() as conn:
                await conn.execute(text("select 1"))
    finally:
        await engine.dispose()
    assert outage_line(caught.value) == DATABASE_DOWN


async def test_a_redis_that_is_down() -> None:
    redis = Redis(host="127.0.0.1", port=_closed_port(), socket_connect_timeout=2)
    try:
        with pytest.raises(RedisConnectionError) as caught:
            await redis.ping()
    finally:
        await redis.aclose()
    assert outage_line(caught.value) == QUEUE_DOWN


def test_other_errors_are_not_outages() -> None:
    assert outage_line(ValueError("bad")) is None
    assert outage_line(RuntimeError("a bug")) is None
