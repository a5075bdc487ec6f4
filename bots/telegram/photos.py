"""Photos with ``/imagine`` or ``/blend`` captions, single or as an album, collected statelessly in Redis.

Telegram delivers an album as one update per photo, sharing a ``media_group_id``; the caption sits on one of them.
Each part is appended to a Redis list; the process that got the newest part waits ``album_wait_s`` and, if no newer
part arrived meanwhile, claims the album and handles it. Any process may receive any part (webhooks behind a load
balancer), so nothing is kept in memory.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from typing import Protocol

from telegram import Message, Update

from impasto.bots.i18n.catalog import t
from impasto.bots.i18n.refusals import localize
from impasto.bots.language.errors import PromptError
from impasto.bots.telegram.commands import command_args, guarded, submit_imagine, where_for
from impasto.bots.telegram.deps import Deps
from impasto.bots.telegram.language import reply_locale
from impasto.bots.telegram.posting import start_progress
from impasto.bots.telegram.replies import reply_error
from impasto.bots.telegram.requests import message_key, requester, thread_of
from impasto.bots.telegram.uploads import UploadRefused, download_image, store_url

MAX_IMAGINE_PHOTOS = 5
COMMAND = re.compile(r"^/(imagine|blend)(@\w+)?(\s|$)", re.IGNORECASE)
_DIMENSIONS = re.compile(r"--dimensions\s+(\S+)", re.IGNORECASE)
ALBUM_TTL_S = 120


class DescribePhoto(Protocol):
    async def photo(self, message: Message) -> bool: ...


@dataclass(frozen=True)
class Part:
    file_id: str
    file_unique_id: str
    size: int | None
    caption: str | None
    message_id: int


def part_of(message: Message) -> Part | None:
    if message.photo:
        photo = message.photo[-1]  # the largest size Telegram made
        return Part(photo.file_id, photo.file_unique_id, photo.file_size, message.caption, message.message_id)
    document = message.document
    if document is not None and (document.mime_type or "").startswith("image/"):
        return Part(document.file_id, document.file_unique_id, document.file_size, message.caption, message.message_id)
    return None


class Photos:
    def __init__(self, deps: Deps, describe: DescribePhoto | None = None) -> None:
        self.deps = deps
        self.describe = describe  # a photo with the caption /describe (``describe.Describe``)

    async def photo(self, update: Update, context: object) -> None:
        message = update.effective_message
        if message is None or update.effective_user is None:
            return
        part = part_of(message)
        if part is None:
            return
        if message.media_group_id is None:
            if part.caption and COMMAND.match(part.caption):
                await self._handle(message, [part])
            elif part.caption and self.describe is not None:
                await self.describe.photo(message)
            return
        redis = self.deps.redis
        key = self.deps.key("album", message.media_group_id)
        async with redis.pipeline(transaction=True) as pipe:
            pipe.rpush(key, json.dumps(part.__dict__))
            pipe.expire(key, ALBUM_TTL_S)
            pipe.set(f"{key}:last", str(part.message_id), ex=ALBUM_TTL_S)
            await pipe.execute()
        await asyncio.sleep(self.deps.album_wait_s)
        last = await redis.get(f"{key}:last")
        if last is None or int(last) != part.message_id:
            return  # a newer part arrived: its handler finishes the album
        if not await redis.set(f"{key}:claimed", "1", nx=True, ex=ALBUM_TTL_S):
            return
        raw: list[bytes] = await redis.lrange(key, 0, -1)  # type: ignore[misc]  # redis-py's sync|async union
        parts = sorted((Part(**json.loads(item)) for item in raw), key=lambda p: p.message_id)
        if any(p.caption and COMMAND.match(p.caption) for p in parts):
            await self._handle(message, parts)

    async def _handle(self, message: Message, parts: list[Part]) -> None:
        """Download, check and store every photo, then /imagine with image prompts or /blend."""
        caption = next(p.caption for p in parts if p.caption and COMMAND.match(p.caption))
        match = COMMAND.match(caption)
        assert match is not None
        command = match.group(1).lower()
        user, chat = message.from_user, message.chat
        assert user is not None
        who = requester(user, chat, thread_of(message))
        text = command_args(caption)
        locale = await reply_locale(self.deps.service, who)
        if command == "blend" and not 2 <= len(parts) <= 5:
            await reply_error(message, t("refusal.blend_album", locale, count=len(parts)))
            return
        if command == "imagine" and len(parts) > MAX_IMAGINE_PHOTOS:
            await reply_error(message, t("refusal.imagine_album", locale, max=MAX_IMAGINE_PHOTOS, count=len(parts)))
            return
        try:
            keys = [await self._store(message, part) for part in parts]
        except UploadRefused as exc:
            await reply_error(message, localize(exc.message, locale))
            return
        urls = [store_url(key) for key in keys]
        if command == "imagine":
            await guarded(message, submit_imagine(self.deps, message, who, text, image_urls=urls), locale)
        else:
            await guarded(message, self._blend(message, text, urls, keys), locale)

    async def _blend(self, message: Message, text: str, urls: list[str], keys: list[str]) -> None:
        leftover = _DIMENSIONS.sub("", text).strip()
        if leftover:
            raise PromptError(
                f"/blend takes no text prompt, only --dimensions portrait|square|landscape; remove {leftover[:60]!r}"
            )
        found = _DIMENSIONS.search(text)
        dimensions = found.group(1).lower() if found else None
        user = message.from_user
        assert user is not None
        who = requester(user, message.chat, thread_of(message))
        service = self.deps.service
        tickets = await service.blend(who, urls, dimensions, idempotency_key=message_key(message), image_keys=keys)
        for ticket in tickets:
            view = await service.job(ticket.job_id)
            await start_progress(message.get_bot(), self.deps.delivery, where_for(message), view, ticket)

    async def _store(self, message: Message, part: Part) -> str:
        image = await download_image(
            message.get_bot(), part.file_id, declared_bytes=part.size, max_bytes=self.deps.max_upload_bytes
        )
        ext = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}[image.format]
        return await asyncio.to_thread(self.deps.images.put, image.data, ext)
