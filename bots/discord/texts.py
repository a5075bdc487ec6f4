"""What the bot writes in Discord messages, Midjourney's way, with every echoed user text made harmless.

User text (prompts, names) is markdown-escaped and its mentions broken, and every message that carries it is sent
with ``NO_MENTIONS`` — the escaping keeps the text readable, ``allowed_mentions`` is what actually stops a ping.
"""

from __future__ import annotations

import discord

from impasto.bots.i18n.catalog import DEFAULT_LOCALE, t
from impasto.bots.i18n.refusals import translate_line
from impasto.bots.service.read_as import read_as_text

NO_MENTIONS = discord.AllowedMentions.none()
MAX_MESSAGE = 2000
MODES = ("fast", "relax", "turbo")
_MAX_PROMPT_SHOWN = 1500  # leaves room for the "- <@user> (status)" tail within Discord's 2000 characters


def escape(text: str) -> str:
    """Markdown-escaped, with @everyone/@here and <@…>/<@&…>/<#…> mentions broken."""
    escaped = discord.utils.escape_markdown(text)
    return discord.utils.escape_mentions(escaped)


def code(text: str) -> str:
    """Text for inside a `code span`: Discord shows it verbatim (a markdown escape would show as a backslash), so
    only a backtick, which would close the span, is replaced."""
    return text.replace("`", "ˋ")


def shown_prompt(prompt: str) -> str:
    prompt = " ".join(prompt.split())
    if len(prompt) > _MAX_PROMPT_SHOWN:
        prompt = prompt[: _MAX_PROMPT_SHOWN - 1] + "…"
    return escape(prompt)


def mention(user_id: str) -> str:
    return f"<@{int(user_id)}>"


def mode_tag(mode: str, *, stealth: bool = False, locale: str = DEFAULT_LOCALE) -> str:
    name = t(f"mode.{mode}", locale) if mode in MODES else mode
    return f"({t('caption.mode_stealth', locale, mode=name)})" if stealth else f"({name})"


def waiting(prompt: str, user_id: str, *, locale: str = DEFAULT_LOCALE) -> str:
    return f"**{shown_prompt(prompt)}** - {mention(user_id)} ({t('status.waiting', locale)})"


def progress(prompt: str, user_id: str, percent: int, mode: str, *, locale: str = DEFAULT_LOCALE) -> str:
    percent = max(0, min(100, percent))
    return f"**{shown_prompt(prompt)}** - {mention(user_id)} ({percent}%) {mode_tag(mode, locale=locale)}"


def finished(prompt: str, user_id: str, mode: str, *, what: str = "", locale: str = DEFAULT_LOCALE) -> str:
    """The grid's caption. ``what`` names a derived job: ``Variations (Strong)``, ``Zoom Out``, ``Pan Left``…"""
    by = t("caption.by", locale, what=what, user=mention(user_id)) if what else mention(user_id)
    return f"**{shown_prompt(prompt)}** - {by} {mode_tag(mode, locale=locale)}"


def single(prompt: str, user_id: str, index: int, *, what: str = "", locale: str = DEFAULT_LOCALE) -> str:
    label = what or t("caption.image", locale, index=index)
    return f"**{shown_prompt(prompt)}** - {label} {mention(user_id)}"


def failed(prompt: str, user_id: str, reason: str, *, locale: str = DEFAULT_LOCALE) -> str:
    reason = t("status.failed", locale, reason=escape(translate_line(reason, locale)))
    return f"**{shown_prompt(prompt)}** - {mention(user_id)} ({reason})"


def withheld(prompt: str, user_id: str, line: str) -> str:
    """A finished result moderation held for review or removed: the one line the delivery core chose, no picture."""
    return f"**{shown_prompt(prompt)}** - {mention(user_id)} ({escape(line)})"


def cancelled(prompt: str, user_id: str, *, locale: str = DEFAULT_LOCALE) -> str:
    return f"**{shown_prompt(prompt)}** - {mention(user_id)} ({t('status.stopped', locale)})"


def refusal(message: str) -> str:
    """A user error, one line. The message may quote the user's input, so it is escaped like any echo."""
    return f"⚠️ {escape(message)}"[:MAX_MESSAGE]


def spoiler_name(filename: str) -> str:
    return filename if filename.startswith("SPOILER_") else f"SPOILER_{filename}"


def help_text(locale: str) -> str:
    """/help, in ``locale``."""
    return t("help.discord", locale)


HELP = "\n".join(
    (
        "**impasto** paints images from your words, Midjourney-style.",
        "`/imagine prompt: a lighthouse at dusk --ar 16:9 --no people` — a 2×2 grid; "
        "U1–U4 pick one, V1–V4 vary one, 🔄 rerolls.",
        "Under one image: Upscale, Vary, Zoom Out, Custom Zoom, ⬅️➡️⬆️⬇️ pan, Make Square, ❤️.",
        "`/blend` 2–5 images · `/describe` an image: four prompts to imagine from · `/settings` · "
        "`/prefer suffix|option|remix` · `/info` · `/fast` `/relax` `/turbo` · `/public` `/stealth` · `/show job_id` · "
        "`/history`",
        "React ✉️ to get a job's details and images by DM; ❌ on your own job cancels or deletes it.",
        "Parameters: `--ar W:H --seed N --chaos 0-100 --stylize N --q .5|1|2 --stop 10-100 --tile --iw N "
        "--style raw --v N --niji --no words`.",
    )
)


#: The longest translation shown under a result (messages hold 2,000 characters; the prompt takes up to 1,500).
READ_AS_BUDGET = 400


def read_as_line(prompt: str, read_as: str | None, *, locale: str = DEFAULT_LOCALE) -> str:
    """``\n-# read as: …`` (small subtext), markdown-escaped with mentions broken; "" when nothing was translated."""
    shown = read_as_text(prompt, read_as)
    if not shown:
        return ""
    if len(shown) > READ_AS_BUDGET:
        shown = shown[: READ_AS_BUDGET - 1].rstrip() + "…"
    return f"\n-# {t('caption.read_as', locale, text=escape(shown))}"
