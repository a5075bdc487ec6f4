"""/describe on Discord: the four prompts as Midjourney posts them (1️⃣–4️⃣ under the asker's mention), with the
buttons 1–4 and 🔄 on one row and Imagine all on the next, and the described picture in an embed, as Midjourney
shows it (``describe_picture``). Every button is a ``JobButton`` in the existing custom_id
scheme (``imp:dp:2:<job>``, ``imp:da:0:<job>``, ``imp:dr:0:<job>``), so any process serves it after any restart."""

from __future__ import annotations

import io
import logging

import discord
from discord import ui

from impasto.bots.discord import texts
from impasto.bots.discord.custom_ids import ButtonId
from impasto.bots.i18n.catalog import t
from impasto.bots.service.views import JobView
from impasto.queue.actions import DESCRIBE_ROWS, Action
from impasto.storage.images import ImageStore

log = logging.getLogger(__name__)

NUMBERS = ("1️⃣", "2️⃣", "3️⃣", "4️⃣")


def is_describe(view: JobView) -> bool:
    return view.action == Action.DESCRIBE.value


def locale_of_job(view: JobView) -> str:
    """The language the result is written in: the asker's at asking time (the job's ``locale``)."""
    return view.locale or "en"


def describe_content(view: JobView) -> str:
    """The result's text: who asked, about which image, then the four prompts, each escaped (they are the
    captioner's, but the image's name is the user's)."""
    locale = locale_of_job(view)
    head = t("describe.result", locale, user=texts.mention(view.user_id), image=texts.shown_prompt(view.display)[:300])
    lines = [f"{NUMBERS[i]} {texts.escape(prompt)}" for i, prompt in enumerate(view.described[:4])]
    return "\n\n".join([head, *lines])[: texts.MAX_MESSAGE]


def describe_view(job_id: str, locale: str) -> ui.View:
    from impasto.bots.discord.views import JobButton

    view = ui.View(timeout=None)
    for row, actions in enumerate(DESCRIBE_ROWS):
        for action in actions:
            for index in range(1, 5) if action.needs_index else (0,):
                view.add_item(JobButton(ButtonId(job_id, action, index), row=row, locale=locale))
    return view


def describe_picture(view: JobView, images: ImageStore) -> tuple[discord.Embed, discord.File] | None:
    """The described picture as an embed's image (its file attached to the message, as Midjourney shows it above the
    four prompts); None when the store no longer has it (purged): the prompts are posted without it. Blocking: the
    store may read a bucket, so call it in a thread."""
    key = view.params.get("image")
    if not isinstance(key, str):
        return None
    try:
        data = images.get(key)
    except (OSError, ValueError) as exc:
        log.info("the picture job %s described is not in the store: %s", view.job_id, exc)
        return None
    name = f"describe_{view.job_id}.{key.rpartition('.')[2]}"
    embed = discord.Embed()
    embed.set_image(url=f"attachment://{name}")
    return embed, discord.File(io.BytesIO(data), filename=name)
