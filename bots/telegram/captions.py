"""Captions under results and progress messages, in Telegram HTML with every piece of user text escaped.

Midjourney's shape: ``**prompt** - @user (fast)`` under a grid, ``**prompt** - Image #2 @user`` under an upscale,
``**prompt** - Variations (Strong) by @user (fast)`` for derived grids.
"""

from __future__ import annotations

from dataclasses import dataclass

from impasto.bots.i18n.actions import caption as action_caption
from impasto.bots.i18n.catalog import DEFAULT_LOCALE, t
from impasto.bots.i18n.refusals import translate_line
from impasto.bots.service.read_as import read_as_text
from impasto.bots.telegram import escaping
from impasto.queue.actions import ACTIONS, Action

MODES = ("fast", "relax", "turbo")
PROMPT_BUDGET = 700  # leaves room in the 1024-character caption for the user, the mode and the job id


def _caption_of(action: str, locale: str) -> str | None:
    try:
        row = ACTIONS[Action(action)]
    except ValueError:
        return None
    return action_caption(row, locale) if row.caption else None


@dataclass(frozen=True)
class CaptionInfo:
    """What a caption needs to know about a job, taken from the job service's view of it."""

    job_id: str
    prompt: str
    user_id: str
    user_name: str
    mode: str
    action: str = "imagine"  # "imagine", "blend" or an Action value
    index: int | None = None  # the parent image an action took (U#/V#)
    locale: str = DEFAULT_LOCALE  # the requester's reply language, recorded with the job


def _mode(info: CaptionInfo) -> str:
    return escaping.text(t(f"mode.{info.mode}", info.locale) if info.mode in MODES else info.mode, 8)


def _prompt(info: CaptionInfo) -> str:
    return escaping.text(info.prompt or t("tg.image_prompt", info.locale), PROMPT_BUDGET)


def result_caption(info: CaptionInfo, *, single: bool = False) -> str:
    locale = info.locale
    prompt = f"<b>{_prompt(info)}</b>"
    user = escaping.user_link(info.user_id, info.user_name)
    mode = _mode(info)
    what = _caption_of(info.action, locale)
    if info.action == Action.UPSCALE.value or (single and what is None):
        middle = f"{t('caption.image', locale, index=info.index)} {user}" if info.index else user
    elif what is not None:
        middle = f"{t('caption.by', locale, what=what, user=user)} ({mode})"
    else:
        middle = f"{user} ({mode})"
    return f"{prompt} - {middle}\n<code>{escaping.text(info.job_id, 48)}</code>"


def waiting_caption(info: CaptionInfo, position: int | None) -> str:
    if position:
        return f"{_head(info)}\n{t('tg.waiting_position', info.locale, position=position)}"
    return f"{_head(info)}\n{t('tg.waiting', info.locale)}"


def progress_caption(info: CaptionInfo, percent: int) -> str:
    return f"{_head(info)}\n🎨 {max(0, min(percent, 100))}%"


def failed_caption(info: CaptionInfo, reason: str) -> str:
    return f"{_head(info)}\n⚠️ {escaping.text(translate_line(reason, info.locale), 300)}"


def withheld_caption(info: CaptionInfo, line: str) -> str:
    """A result moderation held for review or removed: the delivery core's one line, no picture."""
    return f"{_head(info)}\n🛡️ {escaping.text(line, 300)}"


def cancelled_caption(info: CaptionInfo) -> str:
    return f"{_head(info)}\n{t('tg.cancelled', info.locale)}"


def _head(info: CaptionInfo) -> str:
    return f"<b>{_prompt(info)}</b> - {escaping.user_link(info.user_id, info.user_name)} ({_mode(info)})"


#: The longest translation shown: captions hold 1024 visible characters; the prompt takes up to 700, the user, mode
#: and job id about 130.
READ_AS_BUDGET = 180


def read_as_line(prompt: str, read_as: str | None, *, locale: str = DEFAULT_LOCALE) -> str:
    """``\n<i>read as: …</i>``: the English the model read, escaped and shortened; "" when nothing was translated."""
    shown = read_as_text(prompt, read_as)
    return f"\n<i>{t('caption.read_as', locale, text=escaping.text(shown, READ_AS_BUDGET))}</i>" if shown else ""
