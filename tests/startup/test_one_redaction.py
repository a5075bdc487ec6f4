"""One redaction at start-up: ``guarded_start`` hands its secrets to ``impasto.bots.ops.logs`` (the handler
``configure_logging`` made keeps its own formatter and takes them in; any other handler is wrapped once), and what
it prints itself passes the same ``Redactor``: a rejected token never reaches a log line or the terminal."""

from __future__ import annotations

import io
import logging
from urllib.parse import quote

import discord
import pytest
from telegram.error import InvalidToken

from impasto.bots.ops.logs import REDACTED, RedactingFormatter, configure_logging
from impasto.bots.startup import explain_discord, explain_telegram, guarded_start

TELEGRAM_TOKEN = "987654321:AAH-secret-telegram-token-never-shown"
DISCORD_TOKEN = "MTIz.secret-discord-token.never-shown-anywhere"


def _ours() -> logging.Handler:
    return next(h for h in logging.getLogger().handlers if h.get_name() == "impasto")


def test_a_rejected_telegram_token_reaches_neither_the_log_nor_the_terminal(
    log_stream: io.StringIO, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("json", stream=log_stream)  # as the console does: settings' secrets are not known to it here
    formatter = _ours().formatter

    def start() -> None:
        logging.getLogger("telegram.ext.Application").error("getMe for /bot%s/getMe failed", TELEGRAM_TOKEN)
        raise InvalidToken(f"The token `{TELEGRAM_TOKEN}` was rejected by the server.")

    code = guarded_start(
        "telegram", start, secrets=[TELEGRAM_TOKEN, ""], explain=[lambda e: explain_telegram(e, api_url="x")]
    )
    assert code == 2
    assert _ours().formatter is formatter  # taken in, not wrapped: one redaction
    printed = capsys.readouterr()
    for text in (log_stream.getvalue(), printed.out, printed.err):
        assert TELEGRAM_TOKEN not in text
        assert "secret-telegram-token" not in text
    assert REDACTED in log_stream.getvalue()
    assert "rejected the token; check IMPASTO_TELEGRAM_TOKEN" in printed.err


def test_an_unexplained_failure_prints_a_redacted_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    def start() -> None:
        try:
            raise discord.LoginFailure(f"Improper token has been passed: {DISCORD_TOKEN}")
        except discord.LoginFailure as exc:
            raise RuntimeError(f"wrapped, url-encoded too: /bot{quote(TELEGRAM_TOKEN, safe='')}/getMe") from exc

    # No explainer knows it: the whole chain is printed, the token blanked in every link.
    code = guarded_start("discord", start, secrets=[DISCORD_TOKEN, TELEGRAM_TOKEN], explain=[])
    assert code == 1
    err = capsys.readouterr().err
    assert "Traceback" in err
    assert "LoginFailure" in err
    assert "secret-discord-token" not in err
    assert "secret-telegram-token" not in err
    assert f"/bot{REDACTED}/getMe" in err


def test_discord_login_failure_is_one_line_and_foreign_handlers_are_wrapped_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    stream = io.StringIO()
    logger = logging.getLogger()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger.addHandler(handler)
    try:

        def start() -> None:
            logging.getLogger("discord.client").error("login with %s failed", DISCORD_TOKEN)
            raise discord.LoginFailure(f"Improper token has been passed: {DISCORD_TOKEN}")

        explain = [lambda e: explain_discord(e, api_url=None, gateway_url=None)]
        assert guarded_start("discord", start, secrets=[DISCORD_TOKEN], explain=explain) == 2
        assert guarded_start("discord", start, secrets=[DISCORD_TOKEN], explain=explain) == 2
        assert isinstance(handler.formatter, RedactingFormatter)
        assert not isinstance(handler.formatter.inner, RedactingFormatter)
    finally:
        logger.removeHandler(handler)
    err = capsys.readouterr().err
    assert stream.getvalue().count(f"ERROR login with {REDACTED} failed") == 2
    assert DISCORD_TOKEN not in stream.getvalue() + err
    assert err.strip().endswith("check IMPASTO_DISCORD_TOKEN (Developer Portal → Bot → Token)")
