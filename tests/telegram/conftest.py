"""Fixtures: the fake Bot API server and a real PTB Application long-polling it over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fake_botapi import FakeBotApi


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # httpx honours proxy variables; the fake lives on 127.0.0.1.
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture
async def api() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi() as server:
        yield server
