"""A bot that cannot start says why in one line naming the setting, exits 2, and never prints its token.

Each bot runs as a real ``impasto`` process against a local server that answers as the platform does for a rejected
token (HTTP 401), or against a port where nothing listens.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from impasto.bots.startup import MASK, install_redaction, redact
from impasto.storage.testing import migrated_engine, scratch_database

TEST_REDIS_URL = os.environ.get("IMPASTO_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
TELEGRAM_TOKEN = "987654321:AAH-secret-telegram-token-never-shown"
DISCORD_TOKEN = "MTIz.secret-discord-token.never-shown-anywhere"
NOWHERE = "http://127.0.0.1:9"  # the discard port: nothing listens there


@pytest.fixture
async def rejecting_server() -> AsyncIterator[str]:
    """Answers every request as Telegram and Discord answer a bad token: 401."""

    async def unauthorized(request: web.Request) -> web.Response:
        if request.path.startswith("/bot"):
            return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
        return web.json_response({"message": "401: Unauthorized", "code": 0}, status=401)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", unauthorized)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.fixture
async def bot_env(tmp_path: Path, data_dir: Path) -> AsyncIterator[dict[str, str]]:
    async with scratch_database("sqlite", postgres_admin_url="", tmp_dir=tmp_path) as url:
        async with migrated_engine(url):
            pass
        yield {
            **{k: v for k, v in os.environ.items() if not k.startswith("IMPASTO_")},
            "IMPASTO_REDIS_URL": TEST_REDIS_URL,
            "IMPASTO_DATABASE_URL": url,
            "IMPASTO_DATA_DIR": str(data_dir),
            "IMPASTO_QUEUE_NAMESPACE": f"impasto-test-startup-{os.getpid()}:",
            "NO_PROXY": "127.0.0.1",
        }


async def _run(env: dict[str, str], *args: str) -> tuple[int, str]:
    """Run ``impasto ARGS`` (the test's loop keeps serving meanwhile); exit status and everything it printed."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "impasto.bots",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    async with asyncio.timeout(120):
        out, _ = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode()


def _last_line(output: str) -> str:
    return output.strip().splitlines()[-1]


async def test_telegram_rejected_token(bot_env: dict[str, str], rejecting_server: str) -> None:
    env = {**bot_env, "IMPASTO_TELEGRAM_TOKEN": TELEGRAM_TOKEN, "IMPASTO_TELEGRAM_API_URL": rejecting_server}
    code, output = await _run(env, "telegram", "--no-commands")
    assert code == 2, output
    assert "Traceback" not in output
    assert _last_line(output).startswith("impasto telegram: the Telegram Bot API at")
    assert "rejected the token; check IMPASTO_TELEGRAM_TOKEN" in output
    assert TELEGRAM_TOKEN not in output
    assert "secret-telegram-token" not in output


async def test_telegram_unreachable_api(bot_env: dict[str, str]) -> None:
    env = {**bot_env, "IMPASTO_TELEGRAM_TOKEN": TELEGRAM_TOKEN, "IMPASTO_TELEGRAM_API_URL": NOWHERE}
    code, output = await _run(env, "telegram", "--no-commands")
    assert code == 2, output
    assert "Traceback" not in output
    assert f"cannot reach the Telegram Bot API at {NOWHERE}" in _last_line(output)
    assert "check IMPASTO_TELEGRAM_API_URL" in output
    assert "secret-telegram-token" not in output


async def test_discord_rejected_token(bot_env: dict[str, str], rejecting_server: str) -> None:
    env = {**bot_env, "IMPASTO_DISCORD_TOKEN": DISCORD_TOKEN, "IMPASTO_DISCORD_API_URL": rejecting_server}
    code, output = await _run(env, "discord", "--no-sync")
    assert code == 2, output
    assert "Traceback" not in output
    assert _last_line(output) == (
        "impasto discord: Discord rejected the token; check IMPASTO_DISCORD_TOKEN (Developer Portal → Bot → Token)"
    )
    assert "secret-discord-token" not in output


async def test_discord_unreachable_api(bot_env: dict[str, str]) -> None:
    env = {**bot_env, "IMPASTO_DISCORD_TOKEN": DISCORD_TOKEN, "IMPASTO_DISCORD_API_URL": NOWHERE}
    code, output = await _run(env, "discord", "--no-sync")
    assert code == 2, output
    assert "Traceback" not in output
    assert f"cannot reach Discord at {NOWHERE}" in _last_line(output)
    assert "secret-discord-token" not in output


async def test_unreachable_redis_names_the_setting(bot_env: dict[str, str]) -> None:
    env = {
        **bot_env,
        "IMPASTO_TELEGRAM_TOKEN": TELEGRAM_TOKEN,
        "IMPASTO_REDIS_URL": "redis://:hunter2pass@127.0.0.1:9/0",
    }
    code, output = await _run(env, "telegram", "--no-commands")
    assert code == 2, output
    assert "Traceback" not in output
    assert "check IMPASTO_REDIS_URL" in _last_line(output)
    assert "hunter2pass" not in output


def test_redaction_covers_messages_arguments_and_tracebacks() -> None:
    stream = io.StringIO()
    logger = logging.getLogger("impasto.test.redaction")
    logger.propagate = False
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger.addHandler(handler)
    try:
        install_redaction([TELEGRAM_TOKEN, ""], logger)
        logger.warning("calling /bot%s/getMe", TELEGRAM_TOKEN)
        try:
            raise RuntimeError(f"The token `{TELEGRAM_TOKEN}` was rejected")
        except RuntimeError:
            logger.exception("start-up failed")
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert TELEGRAM_TOKEN not in text
    assert text.count(MASK) == 2
    assert "WARNING calling /bot[redacted]/getMe" in text
    # URL-encoded forms are masked too; short strings are not secrets and stay.
    assert redact("t=987654321%3AAAH-secret-telegram-token-never-shown", [TELEGRAM_TOKEN]) == f"t={MASK}"
    assert redact("a b c", ["b"]) == "a b c"
