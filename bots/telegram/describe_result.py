"""How a /describe job shows on Telegram: its four prompts (HTML, escaped) under one line naming the asker and the
image, and the inline keyboard ``1 2 3 4 🔄`` / ``Imagine all`` (``callback_data`` ``j:dp:<n>:<job>``, ``j:dr:0:<job>``,
``j:da:0:<job>``). Used by the delivery surface (the job's end) and ``/show``; the command is ``describe.py``."""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from impasto.bots.i18n.actions import label as action_label
from impasto.bots.i18n.catalog import t
from impasto.bots.service.views import JobView
from impasto.bots.telegram import escaping
from impasto.bots.telegram.callback_data import JobButton, encode
from impasto.queue.actions import DESCRIBE_ROWS, Action

NUMBERS = ("1️⃣", "2️⃣", "3️⃣", "4️⃣")
#: How much of the image's name (a link, a file) the result's first line shows.
NAME_BUDGET = 200


def is_describe(view: JobView) -> bool:
    return view.action == Action.DESCRIBE.value


def locale_of_job(view: JobView) -> str:
    """The language the result is written in: the asker's at asking time (the job's ``locale``)."""
    return view.locale or "en"


def describe_text(view: JobView) -> str:
    """The four prompts (HTML), under one line naming the asker and the image; everything echoed is escaped."""
    head = t(
        "describe.result",
        locale_of_job(view),
        user=escaping.user_link(view.user_id, view.user_name),
        image=f"<b>{escaping.text(view.display, NAME_BUDGET)}</b>",
    )
    lines = [f"{NUMBERS[i]} <code>{escaping.text(p, 700)}</code>" for i, p in enumerate(view.described[:4])]
    return "\n\n".join([head, *lines])


def describe_keyboard(view: JobView) -> InlineKeyboardMarkup:
    locale = locale_of_job(view)
    rows: list[list[InlineKeyboardButton]] = []
    for actions in DESCRIBE_ROWS:
        row = []
        for action in actions:
            for index in range(1, 5) if action.needs_index else (0,):
                if action.row.icon_only and action.row.emoji:
                    label = action.row.emoji
                else:
                    label = action_label(action.row, locale, index)
                row.append(InlineKeyboardButton(label, callback_data=encode(JobButton(action, view.job_id, index))))
        rows.append(row)
    return InlineKeyboardMarkup(rows)
