"""The operator's setup, for real: ``impasto telegram`` and ``impasto worker`` as separate processes, pointed at the
fake Bot API server in this process, a SQLite database and Redis db 15. Used by the end-to-end test and by
``bench_telegram.py``."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fake_botapi import TOKEN, FakeBotApi
from tg_harness import TEST_REDIS_URL

from impasto.storage.testing import migrated_engine

IMPASTO = str(Path(sys.executable).parent / "impasto")


@asynccontextmanager
async def live_processes(
    api: FakeBotApi, tmp_path: Path, *, renderer: str = "engine", model: str = "tiny-sdxl"
) -> AsyncIterator[list[asyncio.subprocess.Process]]:
    data_dir = tmp_path / "impasto-data"
    data_dir.mkdir(exist_ok=True)
    db_url = f"sqlite:///{data_dir / 'impasto.db'}"
    async with migrated_engine(db_url):
        pass
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMPASTO_") or k.startswith("IMPASTO_TEST_")}
    env.update(
        IMPASTO_DATA_DIR=str(data_dir),
        IMPASTO_DATABASE_URL=db_url,
        IMPASTO_REDIS_URL=TEST_REDIS_URL,
        IMPASTO_DEFAULT_MODEL=model,
        IMPASTO_TELEGRAM_TOKEN=TOKEN,
        IMPASTO_TELEGRAM_API_URL=api.url,
        IMPASTO_TELEGRAM_CONSUMER=f"e2e-{os.getpid()}",
        # Our own queue: no other session's worker on db 15 takes these jobs.
        IMPASTO_QUEUE_NAMESPACE=f"impasto-e2e-{secrets.token_hex(4)}:",
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
    )
    logs = tmp_path / "logs"
    logs.mkdir(exist_ok=True)
    processes: list[asyncio.subprocess.Process] = []
    try:
        for name, args in (
            ("worker", ["worker", "--renderer", renderer, "--name", "e2e-gpu"]),
            ("telegram", ["telegram"]),
        ):
            log = (logs / f"{name}.log").open("wb")
            processes.append(
                await asyncio.create_subprocess_exec(IMPASTO, *args, env=env, stdout=log, stderr=log, cwd=tmp_path)
            )
        yield processes
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
