"""The bot token never reaches a log: ``impasto telegram`` and ``impasto worker`` as processes, imagine → U2 → V1,
then every log line of both is searched for it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from fake_botapi import TOKEN, FakeBotApi
from test_telegram_flows import buttons, is_result
from tg_e2e import live_processes

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


async def test_a_full_run_logs_no_token(api: FakeBotApi, tmp_path: Path) -> None:
    async with live_processes(api, tmp_path, renderer="noop"):
        await api.wait_method("deleteWebhook", timeout_s=120)
        await api.push(api.message("/imagine a quiet harbour"))
        [grid] = await api.wait_for(lambda c: is_result(c) and "harbour" in c.params["caption"], timeout_s=300)
        mark = len(api.calls)
        await api.push(api.callback(buttons(grid)["U2"], grid.result))
        await api.wait_for(lambda c: is_result(c) and "Image #2" in c.params["caption"], after=mark)
        mark = len(api.calls)
        await api.push(api.callback(buttons(grid)["V1"], grid.result))
        await api.wait_for(lambda c: is_result(c) and "Variations" in c.params["caption"], after=mark, timeout_s=300)
    logs = {path.name: await asyncio.to_thread(path.read_text) for path in (tmp_path / "logs").glob("*.log")}
    assert set(logs) == {"worker.log", "telegram.log"}
    assert all(logs.values())  # both processes logged something
    secret = TOKEN.partition(":")[2]
    for name, text in logs.items():
        assert TOKEN not in text, name
        assert secret not in text, name
