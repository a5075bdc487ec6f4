"""The "read as: …" line under a result whose prompt the worker translated (engine/translate.py).

Users see both texts: the caption keeps the prompt as written, and this line shows the English the model read. Pure
functions, one per platform, each escaping the text its own way; the delivery code appends the line it gets (an
empty string means: nothing was translated, add nothing).
"""

from __future__ import annotations

from impasto.bots.telegram import escaping

#: The longest translation shown. Telegram captions hold 1024 visible characters: the prompt takes up to 700, the
#: user, mode and job id about 130. Discord messages hold 2000 and the prompt takes up to 1500.
TELEGRAM_BUDGET = 180
DISCORD_BUDGET = 400


def read_as_text(prompt: str, read_as: str | None) -> str | None:
    """The translation worth showing: None when there is none or it is the prompt itself (nothing translated)."""
    if read_as is None:
        return None
    shown = " ".join(read_as.split())
    if not shown or shown == " ".join(prompt.split()):
        return None
    return shown


def telegram_line(prompt: str, read_as: str | None) -> str:
    """``\\n<i>read as: …</i>`` in Telegram HTML, the translation escaped and shortened; "" when none."""
    shown = read_as_text(prompt, read_as)
    return f"\n<i>read as: {escaping.text(shown, TELEGRAM_BUDGET)}</i>" if shown else ""


def discord_line(prompt: str, read_as: str | None) -> str:
    """``\\n-# read as: …`` (Discord's small subtext), markdown-escaped with mentions broken; "" when none."""
    shown = read_as_text(prompt, read_as)
    if not shown:
        return ""
    if len(shown) > DISCORD_BUDGET:
        shown = shown[: DISCORD_BUDGET - 1].rstrip() + "…"
    from impasto.bots.discord.texts import escape

    return f"\n-# read as: {escape(shown)}"
