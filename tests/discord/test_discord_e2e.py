"""``impasto discord`` + ``impasto worker`` (the tiny SDXL model, real diffusers on the CPU) as separate processes,
against the fake Discord in this process: imagine → U2 → Zoom Out 2× → V1."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from discord_stack import TEST_REDIS_URL
from fake_discord import BOB, FakeDiscord
from redis.asyncio import Redis

from impasto.storage.testing import migrated_engine

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
IMPASTO = str(Path(sys.executable).parent / "impasto")
Json = dict[str, Any]


@asynccontextmanager
async def live_processes(fake: FakeDiscord, tmp_path: Path) -> AsyncIterator[Path]:
    data_dir = tmp_path / "impasto-data"
    data_dir.mkdir()
    db_url = f"sqlite:///{data_dir / 'impasto.db'}"
    async with migrated_engine(db_url):
        pass
    redis = Redis.from_url(TEST_REDIS_URL)
    # A namespace of its own (both processes read IMPASTO_QUEUE_NAMESPACE): db 15 is shared with other test sessions.
    namespace = f"impasto-e2e-{secrets.token_hex(4)}:"
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMPASTO_") or k.startswith("IMPASTO_TEST_")}
    env.update(
        IMPASTO_DATA_DIR=str(data_dir),
        IMPASTO_DATABASE_URL=db_url,
        IMPASTO_REDIS_URL=TEST_REDIS_URL,
        IMPASTO_QUEUE_NAMESPACE=namespace,
        IMPASTO_DEFAULT_MODEL="tiny-sdxl",
        IMPASTO_DISCORD_TOKEN="fake-token",
        IMPASTO_DISCORD_API_URL=fake.api_url,
        IMPASTO_DISCORD_GATEWAY_URL=fake.gateway_url,
    )
    logs = tmp_path / "logs"
    logs.mkdir()
    processes: list[asyncio.subprocess.Process] = []
    try:
        for name, args in (("worker", ["worker", "--name", "discord-e2e"]), ("discord", ["discord"])):
            log = (logs / f"{name}.log").open("wb")
            processes.append(
                await asyncio.create_subprocess_exec(IMPASTO, *args, env=env, stdout=log, stderr=log, cwd=tmp_path)
            )
        yield logs
    finally:
        for process in processes:
            if process.returncode is None:
                process.terminate()
        for process in processes:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), 15)
            if process.returncode is None:
                process.kill()
                await process.wait()
        async for key in redis.scan_iter(match=namespace + "*"):  # leave db 15 as we found it
            await redis.delete(key)
        await redis.aclose()


async def test_imagine_u2_zoom_out_v1_with_real_processes(fake: FakeDiscord, tmp_path: Path) -> None:
    async with live_processes(fake, tmp_path) as logs:
        try:
            await fake.wait_for(lambda: "global" in fake.synced_commands and fake.identified, 120)
            await asyncio.sleep(2.5)  # discord.py's guild_ready_timeout (2 s) after GUILD_CREATE, then on_ready
            record = await fake.slash("imagine", [{"name": "prompt", "type": 3, "value": "a lighthouse at dusk"}])
            await fake.wait_for(lambda: record.callback, 10)
            assert record.callback == {"type": 5}
            grid = await fake.wait_message(lambda m: m["id"] == record.original_id and bool(m["components"]), 150)
            assert "noise" in grid["content"]  # the tiny model says so

            await fake.press(grid["id"], fake.button(grid, "U2")["custom_id"], user_id=BOB)
            single = await fake.wait_message(lambda m: "Image #2" in m["content"], 60)

            await fake.press(single["id"], fake.button(single, "Zoom Out 2x")["custom_id"], user_id=BOB)
            zoomed = await fake.wait_message(
                lambda m: m.get("message_reference", {}).get("message_id") == single["id"] and bool(m["components"]),
                400,
            )
            assert "Zoom Out 2x by" in zoomed["content"]

            await fake.press(zoomed["id"], fake.button(zoomed, "V1")["custom_id"])
            varied = await fake.wait_message(
                lambda m: m.get("message_reference", {}).get("message_id") == zoomed["id"] and bool(m["components"]),
                400,
            )
            assert "Variations (Strong) by" in varied["content"]
            assert [b.get("label") for b in fake.buttons(varied)][:4] == ["U1", "U2", "U3", "U4"]
        except BaseException:
            for log in sorted(logs.iterdir()):
                print(f"--- {log.name}\n{log.read_text(errors='replace')[-4000:]}")
            raise
