"""Measure the Discord front door: interaction → defer (the 3-second promise) and interaction → grid.

    .venv/bin/python tests/discord/bench_latency.py [--runs 20] [--engine]

Drives the real discord.py client against the fake Discord on 127.0.0.1, on the real job service (SQLite), the real
queue on Redis db 15 (flushed) and a real worker running alongside: the no-op renderer by default (adapter + service +
queue cost), or ``--engine`` for the real diffusers engine with the built-in tiny-sdxl model (random weights, CPU or
GPU). Prints numbers; asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from discord_stack import service_stack
from fake_discord import FakeDiscord

from impasto.bots.discord.app import build_bot
from impasto.bots.discord.endpoints import use_endpoints


def summary(name: str, values_s: list[float]) -> str:
    ms = sorted(v * 1000 for v in values_s)
    p95 = ms[min(len(ms) - 1, int(len(ms) * 0.95))]
    median = statistics.median(ms)
    return f"{name:<24} n={len(ms):<3} median {median:8.1f} ms   p95 {p95:8.1f} ms   max {ms[-1]:8.1f} ms"


async def main(runs: int, engine: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        model = "tiny-sdxl" if engine else "tiny-sd15"
        async with service_stack(Path(tmp), "sqlite", default_model=model) as stack:
            if engine:
                from impasto.queue.renderer import EngineRenderer

                registry = stack.service.registry
                stack.renderer_factory = lambda: EngineRenderer.load(
                    registry, cache_dir=Path(tmp) / "models", lora_dir=None, model=model
                )
            fake = FakeDiscord()
            await fake.start()
            use_endpoints(fake.api_url, fake.gateway_url)
            options = stack.bot_options(min_edit_interval_s=1.0)
            bot = build_bot(stack.service, stack.pool, options, ns=stack.ns)
            bot_task = asyncio.create_task(bot.start("fake-token"))
            worker = stack.worker(burst=False, steps=10)
            worker_task = asyncio.create_task(worker.main())
            try:
                await fake.wait_for(bot.is_ready, 30)
                defer, waiting, grid = [], [], []
                for run in range(runs + 1):
                    prompt = [{"name": "prompt", "type": 3, "value": f"a lighthouse {run}"}]
                    record = await fake.slash("imagine", prompt)
                    await fake.wait_for(lambda r=record: r.answered_at, 30)
                    await fake.wait_message(
                        lambda m, r=record: m["id"] == r.original_id and "Waiting" in m["content"], 30
                    )
                    seen_waiting = time.monotonic()
                    await fake.wait_message(lambda m, r=record: m["id"] == r.original_id and bool(m["components"]), 600)
                    done = time.monotonic()
                    if run == 0:
                        continue  # warm-up: first model load, first connections
                    assert record.answered_at is not None
                    defer.append(record.answered_at - record.sent_at)
                    waiting.append(seen_waiting - record.sent_at)
                    grid.append(done - record.sent_at)
                print(f"renderer: {'engine ' + model if engine else 'no-op (10 steps)'}; {runs} runs after 1 warm-up")
                print(summary("interaction → defer", defer))
                print(summary("interaction → Waiting", waiting))
                print(summary("interaction → grid", grid))
            finally:
                worker_task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await worker_task
                await worker.close()
                await bot.close()
                with contextlib.suppress(Exception):
                    await bot_task
                await fake.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--engine", action="store_true", help="render with the real engine and tiny-sdxl")
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.engine))
