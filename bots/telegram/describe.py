"""/describe on Telegram: ``/describe`` as a reply to a photo (or an image document), ``/describe LINK``,
``/describe JOB_ID``, or a photo sent with the caption ``/describe``. The result is the four prompts as text, with
the inline keyboard ``1 2 3 4 🔄`` / ``Imagine all`` in the existing ``callback_data`` scheme (``j:dp:2:<job>``,
``j:da:0:<job>``, ``j:dr:0:<job>``), so any process serves them after any restart."""

from __future__ import annotations

import asyncio
import re

from telegram import Message, Update

from impasto.bots.i18n.catalog import t
from impasto.bots.i18n.locale import served_locale
from impasto.bots.i18n.refusals import localize
from impasto.bots.telegram.commands import command_args, guarded, where_for
from impasto.bots.telegram.deps import Deps
from impasto.bots.telegram.language import reply_locale
from impasto.bots.telegram.photos import Part, part_of
from impasto.bots.telegram.posting import start_progress
from impasto.bots.telegram.replies import reply_error
from impasto.bots.telegram.requests import message_key, requester, thread_of
from impasto.bots.telegram.uploads import UploadRefused, download_image

CAPTION = re.compile(r"^/describe(@\w+)?(\s|$)", re.IGNORECASE)
_JOB_ID = re.compile(r"^[A-Za-z0-9_-]{6,48}$")


def _locale(message: Message) -> str:
    return served_locale(message.from_user.language_code if message.from_user else None) or "en"


class Describe:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def command(self, update: Update, context: object) -> None:
        """``/describe`` replying to a picture, or with a link or a job id after it."""
        message = update.effective_message
        if message is None or update.effective_user is None or update.effective_chat is None:
            return
        args = command_args(message.text or "")
        replied = message.reply_to_message
        part = part_of(replied) if replied is not None else None
        locale = await self._locale(message)
        if part is not None and not args:
            await self._describe_part(message, part, locale)
        elif args.lower().startswith(("http://", "https://")) and len(args.split()) == 1:
            await guarded(message, self._submit(message, link=args), locale)
        elif _JOB_ID.match(args):
            await guarded(message, self._submit(message, job_id=args), locale)
        else:
            await reply_error(message, t("describe.refusal.no_image", locale))

    async def photo(self, message: Message) -> bool:
        """A photo (not an album) with the caption ``/describe``: described. False when it is not one."""
        part = part_of(message)
        if part is None or message.media_group_id is not None or not CAPTION.match(part.caption or ""):
            return False
        await self._describe_part(message, part, await self._locale(message))
        return True

    async def _locale(self, message: Message) -> str:
        """The asker's reply language: their /settings choice, else their app's, else the group's default."""
        if message.from_user is None:
            return _locale(message)
        return await reply_locale(self.deps.service, requester(message.from_user, message.chat, thread_of(message)))

    async def _describe_part(self, message: Message, part: Part, locale: str) -> None:
        try:
            image = await download_image(
                message.get_bot(), part.file_id, declared_bytes=part.size, max_bytes=self.deps.max_upload_bytes
            )
        except UploadRefused as exc:
            await reply_error(message, localize(exc.message, locale))
            return
        ext = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}[image.format]
        key = await asyncio.to_thread(self.deps.images.put, image.data, ext)
        name = f"🖼️ {image.width_px}×{image.height_px}"
        await guarded(message, self._submit(message, image_key=key, display=name), locale)

    async def _submit(
        self,
        message: Message,
        *,
        image_key: str | None = None,
        link: str | None = None,
        job_id: str | None = None,
        display: str | None = None,
    ) -> None:
        user = message.from_user
        assert user is not None
        who = requester(user, message.chat, thread_of(message))
        service = self.deps.service
        ticket = await service.describe(
            who,
            idempotency_key=message_key(message),
            image_key=image_key,
            link=link,
            job_id=job_id,
            display=display,
        )
        view = await service.job(ticket.job_id)
        await start_progress(message.get_bot(), self.deps.delivery, where_for(message), view, ticket)
