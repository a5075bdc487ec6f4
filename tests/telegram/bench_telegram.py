"""Latency of the Telegram front door with real processes: update → first reply, update → grid.

    .venv/bin/python tests/telegram/bench_telegram.py [--runs 3] [--renderer engine|noop] [--model tiny-sdxl]

Starts the fake Bot API server here, ``impasto telegram`` and ``impasto worker`` as processes (SQLite, Redis db 15),
sends /imagine RUNS times one after another and prints the times. No assertions: numbers only.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from fake_botapi import Call, FakeBotApi
from tg_e2e import live_processes


def _is_result(call: Call) -> bool:
    return call.method == "sendPhoto" and "reply_markup" in call.params


async def bench(runs: int, renderer: str, model: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with FakeBotApi() as api, live_processes(api, Path(tmp), renderer=renderer, model=model):
            started = time.perf_counter()
            await api.wait_method("deleteWebhook", timeout_s=120)
            print(f"bot ready after {time.perf_counter() - started:.2f} s")
            first_reply: list[float] = []
            to_grid: list[float] = []
            for run in range(runs + 1):  # run 0 warms the worker up (model load) and is reported apart
                mark = len(api.calls)
                sent = time.perf_counter()
                await api.push(api.message(f"/imagine bench run {run} --ar 1:1"))
                await api.wait_for(lambda c: c.method == "sendMessage", after=mark, timeout_s=120)
                reply_s = time.perf_counter() - sent
                await api.wait_for(_is_result, after=mark, timeout_s=600)
                grid_s = time.perf_counter() - sent
                label = "warm-up" if run == 0 else f"run {run}"
                print(f"{label}: update → first reply {reply_s * 1000:.0f} ms, update → grid {grid_s:.2f} s")
                if run:
                    first_reply.append(reply_s)
                    to_grid.append(grid_s)
            if first_reply:
                print(
                    f"median over {runs}: first reply {statistics.median(first_reply) * 1000:.0f} ms, "
                    f"grid {statistics.median(to_grid):.2f} s ({renderer} renderer, {model})"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--renderer", choices=["engine", "noop"], default="engine")
    parser.add_argument("--model", default="tiny-sdxl")
    args = parser.parse_args()
    asyncio.run(bench(args.runs, args.renderer, args.model))


if __name__ == "__main__":
    main()
