"""``IMPASTO_LOG_FORMAT=json``: one JSON object per line for every library's records, context merged, secrets blank."""

from __future__ import annotations

import io
import json
import logging
import warnings
from typing import Any

import pytest
import structlog.contextvars
from pydantic import SecretStr

from impasto.bots.config import Settings
from impasto.bots.ops.logs import REDACTED, configure_logging, format_from_env, secrets_of

TELEGRAM_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"  # the Bot API's documented example shape
DISCORD_TOKEN = "MTA4NjQ5NzQ3NjQ2MjE0MzQ5OA.GmYk3x.abcdefghijklmnopqrstuvwxyz0123456789AB"


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_carry_the_bound_job_and_blank_every_secret(log_stream: io.StringIO) -> None:
    configure_logging("json", secrets=["hunter2-db-password", "webhook-secret-value"], stream=log_stream)
    structlog.contextvars.bind_contextvars(job_id="Ab3dE5fG7hJ9", platform="telegram", user="42")
    log = logging.getLogger("impasto.test")
    log.info("POST https://api.telegram.org/bot%s/sendPhoto", TELEGRAM_TOKEN)
    log.warning("login with %s failed; db password hunter2-db-password", DISCORD_TOKEN)
    logging.getLogger("arq.worker").info("  0.05s → %s:impasto_render()", "Ab3dE5fG7hJ9")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("a library is unhappy", UserWarning, stacklevel=1)
    try:
        raise RuntimeError("webhook-secret-value leaked into an error")
    except RuntimeError:
        log.exception("the render failed")
    structlog.contextvars.clear_contextvars()
    log.info("no job now")

    text = log_stream.getvalue()
    for secret in (TELEGRAM_TOKEN, DISCORD_TOKEN, "hunter2-db-password", "webhook-secret-value"):
        assert secret not in text
    lines = _lines(log_stream)
    assert len(lines) == 6
    assert [line["level"] for line in lines] == ["info", "warning", "info", "warning", "error", "info"]
    assert all(line["job_id"] == "Ab3dE5fG7hJ9" for line in lines[:5])
    assert "job_id" not in lines[5]
    assert lines[0]["event"] == f"POST https://api.telegram.org/bot{REDACTED}/sendPhoto"
    assert (lines[0]["platform"], lines[0]["user"], lines[0]["logger"]) == ("telegram", "42", "impasto.test")
    assert lines[2]["logger"] == "arq.worker"
    assert lines[3]["logger"] == "py.warnings"
    assert "a library is unhappy" in lines[3]["event"]
    assert "RuntimeError" in lines[4]["exception"]
    assert "timestamp" in lines[0]


def test_console_format_is_one_readable_line(log_stream: io.StringIO) -> None:
    configure_logging("console", stream=log_stream)
    logging.getLogger("impasto.test").info("ready on %d", 9100)
    assert log_stream.getvalue().count("\n") == 1
    assert "ready on 9100" in log_stream.getvalue()


def test_the_format_comes_from_the_environment_and_a_wrong_one_is_named() -> None:
    assert format_from_env({}) == "console"
    assert format_from_env({"IMPASTO_LOG_FORMAT": "JSON"}) == "json"
    with pytest.raises(ValueError, match="IMPASTO_LOG_FORMAT='xml': use json or console"):
        format_from_env({"IMPASTO_LOG_FORMAT": "xml"})


def test_the_secrets_of_the_settings_are_its_tokens_and_url_passwords(clean_env: None) -> None:
    settings = Settings(
        telegram_token=SecretStr(TELEGRAM_TOKEN),
        discord_token=SecretStr(DISCORD_TOKEN),
        database_url="postgresql://impasto:pg-pass-123@db:5432/impasto",
        redis_url="redis://:redis-pass-456@redis:6379/0",
    )
    assert sorted(secrets_of(settings)) == sorted([TELEGRAM_TOKEN, DISCORD_TOKEN, "pg-pass-123", "redis-pass-456"])
