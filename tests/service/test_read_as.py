"""The "read as" line under translated results, on both platforms, with the captions it is appended to."""

from __future__ import annotations

import html
import re

from impasto.bots.discord import texts
from impasto.bots.discord.texts import read_as_line as discord_line
from impasto.bots.service.read_as import read_as_text
from impasto.bots.telegram.captions import CaptionInfo, result_caption
from impasto.bots.telegram.captions import read_as_line as telegram_line

PROMPT = "一只在月光下睡觉的橘猫 --ar 16:9"
READ = "a ginger cat sleeping in the moonlight --ar 16:9"


def visible(telegram_html: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", telegram_html))


def test_nothing_is_added_when_nothing_was_translated() -> None:
    assert read_as_text("a cat", None) is None
    assert read_as_text("a cat", "a  cat") is None
    assert telegram_line("a cat", None) == ""
    assert discord_line("a cat", "a cat") == ""


def test_telegram_caption_shows_both_texts() -> None:
    info = CaptionInfo(job_id="j1", prompt=PROMPT, user_id="42", user_name="Ann", mode="fast")
    caption = result_caption(info) + telegram_line(PROMPT, READ)
    shown = visible(caption)
    assert PROMPT in shown
    assert shown.endswith(f"\nread as: {READ}")
    assert "<i>read as: a ginger cat sleeping in the moonlight --ar 16:9</i>" in caption


def test_telegram_line_escapes_and_fits_a_caption() -> None:
    line = telegram_line("x", "<b>bold</b> & " + "word " * 400)
    assert "<b>bold" not in line
    assert "&lt;b&gt;bold&lt;/b&gt; &amp;" in line
    long_info = CaptionInfo(job_id="j" * 48, prompt="猫" * 2000, user_id="42", user_name="N" * 64, mode="fast")
    caption = result_caption(long_info) + telegram_line("猫" * 2000, "cat " * 2000)
    assert len(visible(caption)) <= 1024


def test_discord_message_shows_both_texts_escaped_and_fits() -> None:
    message = texts.finished(PROMPT, "42", "fast") + discord_line(PROMPT, READ)
    assert PROMPT in message
    assert message.endswith(f"\n-# read as: {READ}")
    line = discord_line("x", "**bold** @everyone " + "word " * 400)
    assert "\\*\\*bold\\*\\*" in line
    assert "@everyone" not in line
    long = texts.finished("猫" * 3000, "42", "fast") + discord_line("猫" * 3000, "cat " * 3000)
    assert len(long) <= texts.MAX_MESSAGE
