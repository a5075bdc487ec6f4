"""``impasto telegram`` + ``impasto worker`` (the tiny SDXL model, real diffusers on the CPU) as processes, against
the fake Bot API: imagine → U2 → Upscale (Subtle) → V1."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fake_botapi import Call, FakeBotApi
from test_telegram_flows import buttons, is_result
from tg_e2e import live_processes

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def result_with(words: str) -> Callable[[Call], bool]:
    return lambda call: is_result(call) and words in call.params["caption"]


async def test_imagine_u2_upscale_v1_with_real_processes(api: FakeBotApi, tmp_path: Path) -> None:
    async with live_processes(api, tmp_path):
        await api.wait_method("deleteWebhook", timeout_s=120)  # the bot is up and about to poll
        await api.push(api.message("/imagine a lighthouse at dusk --ar 3:2"))
        # Predicates name this session's prompt: Redis db 15 may hold other runs' events and routes.
        await api.wait_for(lambda c: "Waiting to start" in str(c.params.get("text")), timeout_s=60)
        [grid] = await api.wait_for(lambda c: is_result(c) and "lighthouse" in c.params["caption"], timeout_s=400)
        assert "noise" in grid.params["caption"]  # the tiny model says so

        mark = len(api.calls)
        await api.push(api.callback(buttons(grid)["U2"], grid.result))
        [single] = await api.wait_for(lambda c: is_result(c) and "Image #2" in c.params["caption"], after=mark)
        assert "Image #2" in single.params["caption"]

        mark = len(api.calls)
        await api.push(api.callback(buttons(single)["Upscale (Subtle)"], single.result))
        [upscaled] = await api.wait_for(
            lambda c: is_result(c) and "Upscaled" in c.params["caption"], after=mark, timeout_s=400
        )
        assert "Upscaled (Subtle)" in upscaled.params["caption"]

        mark = len(api.calls)
        await api.push(api.callback(buttons(grid)["V1"], grid.result))
        [varied] = await api.wait_for(
            lambda c: is_result(c) and "Variations" in c.params["caption"], after=mark, timeout_s=400
        )
        assert "Variations" in varied.params["caption"]
        assert list(buttons(varied))[:4] == ["U1", "U2", "U3", "U4"]
