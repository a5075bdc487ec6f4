"""Discord's side of the delivery core (``bots/service/delivery``): edit a job's message with its progress, and
turn it into the result with its buttons (or the reason it failed). Nothing else of delivery lives in the adapter.

The core calls these from whichever bot process read the event, so the message is edited with the bot's own token
(any process can), not through the interaction that posted it. Discord's errors become the core's two here.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace
from typing import Any

import aiohttp
import discord

from impasto.bots.discord import texts
from impasto.bots.discord.delivery import image_file
from impasto.bots.discord.describe import (
    describe_content,
    describe_picture,
    describe_view,
    is_describe,
    locale_of_job,
)
from impasto.bots.discord.upload_limits import UploadLimits
from impasto.bots.i18n.actions import caption
from impasto.bots.i18n.catalog import t
from impasto.bots.i18n.refusals import translate_line
from impasto.bots.service.delivery.core import Deferred, End, Gone, Step
from impasto.bots.service.result_forms import Limits, NothingFits, choose, discord_limits
from impasto.bots.service.views import JobView, MessageView
from impasto.bots.web.links import WebLinkSettings, download_link
from impasto.queue.actions import ACTIONS, Action
from impasto.storage.images import ImageStore

log = logging.getLogger(__name__)
PLATFORM = "discord"


@dataclass(frozen=True)
class Finished:
    """A finished job's pictures, read from the image store."""

    grid_png: bytes | None  # a grid job's 2×2 image; None for a single-image job
    images_png: tuple[bytes, ...] = ()
    flagged: bool = False  # moderation flagged it: a spoiler outside NSFW channels (the core's ``End.spoiler``)


def finished(images: ImageStore, view: JobView) -> Finished:
    grid = view.image(0)
    singles = tuple(images.get(i.key) for i in sorted(view.images, key=lambda i: i.index) if i.index > 0)
    return Finished(
        grid_png=images.get(grid.key) if grid is not None else None, images_png=singles, flagged=view.flagged
    )


def shows_grid(view: JobView) -> bool:
    """A 2×2 result (U/V buttons) or one image: from its images once done, from its action before."""
    if view.images:
        return view.is_grid
    return ACTIONS[Action(view.action)].output == "grid"


def result_content(view: JobView) -> str:
    """The result's text, in the requester's language (``view.locale``, recorded with the job)."""
    locale = view.locale
    what = caption(ACTIONS[Action(view.action)], locale)
    read_as = texts.read_as_line(view.display, view.read_as, locale=locale)
    if shows_grid(view):
        return texts.finished(view.display, view.user_id, view.mode, what=what, locale=locale) + read_as
    return texts.single(view.display, view.user_id, view.image_index or 1, what=what, locale=locale) + read_as


def result_view(view: JobView, *, mask_editor: bool = False) -> discord.ui.View:
    from impasto.bots.discord.views import grid_view, single_view

    if shows_grid(view):
        return grid_view(view.job_id, locale=view.locale)
    return single_view(view.job_id, 1, mask_editor=mask_editor, locale=view.locale)


def result_file(
    view: JobView,
    pictures: Finished,
    *,
    nsfw_channel: bool,
    limits: Limits | None = None,
    below: int | None = None,
    download_url: str | None = None,
) -> tuple[discord.File | None, str, int]:
    """The result's picture in the largest form ``limits`` take (the PNG when it fits), the caption line that says
    where the full PNG is ("" for the PNG itself; ``download_url`` as a link when given), and the upload's size
    (what ``below`` takes after a refusal)."""
    png = pictures.grid_png if shows_grid(view) and pictures.grid_png else None
    if png is None and pictures.images_png:
        png = pictures.images_png[0]
    if png is None:
        return None, "", 0
    choice = choose(png, limits or discord_limits(None), below=below, download_url=download_url)
    name = f"impasto_{view.job_id}.{choice.view.ext}"
    file = image_file(choice.view.data, name, flagged=pictures.flagged, nsfw_channel=nsfw_channel)
    line = choice.caption_line(link="[{label}](<{url}>)", locale=view.locale)
    return file, line, len(choice.view.data)


def result_download(web: WebLinkSettings | None, view: JobView, *, lifetime_s: int | None = None) -> str | None:
    """The signed link to the full PNG of the picture ``result_file`` shows (the grid, else the first single), made
    for the job's owner; None without a web front door (the caption then says the PNG is kept)."""
    if web is None or not view.images:
        return None
    grid = view.image(0)
    index = 0 if shows_grid(view) and grid is not None else min(i.index for i in view.images if i.index > 0)
    return download_link(web, (view.platform, view.user_id), view.job_id, index, lifetime_s=lifetime_s)


def with_line(content: str, line: str) -> str:
    """The result's text with the full-resolution line as small print under it. The line (with its link) is kept
    whole: a long prompt gives way instead, so the message stays within Discord's 2,000 characters."""
    if not line:
        return content
    tail = f"\n-# {line}"
    room = texts.MAX_MESSAGE - len(tail)
    return (content if len(content) <= room else content[: room - 1] + "…") + tail


UPLOAD_TOO_LARGE = 40005  # Discord's error code for an attachment past the destination's limit


class TooLarge(Exception):
    """Discord refused an upload as too large (413 / 40005): the next smaller form goes at once."""


class DiscordSurface:
    platform = PLATFORM

    def __init__(
        self,
        client: discord.Client,
        images: ImageStore,
        *,
        mask_editor: bool = False,
        limits: UploadLimits | None = None,
        web: WebLinkSettings | None = None,
        download_s: int | None = None,
    ) -> None:
        self.client = client
        self.images = images
        self.mask_editor = mask_editor  # the web front door is there: offer Vary (Region)
        self.limits = limits  # what interactions said each channel takes
        self.web = web  # the web front door: a full PNG too large for the chat gets a download link
        self.download_s = download_s  # how long that link works (None: links.LIFETIMES)

    async def _edit(self, shown: MessageView, content: str, **kwargs: Any) -> None:
        channel = self.client.get_partial_messageable(int(shown.chat_id))
        message = channel.get_partial_message(int(shown.message_id))
        file = kwargs.pop("file", None)
        try:
            await message.edit(
                content=content, attachments=[file] if file else [], allowed_mentions=texts.NO_MENTIONS, **kwargs
            )
        except discord.NotFound as exc:
            raise Gone(f"message {shown.message_id} was deleted") from exc
        except discord.Forbidden as exc:
            raise Gone(f"no permission to edit in channel {shown.chat_id}: {exc.text}") from exc
        except discord.RateLimited as exc:  # a 429 longer than discord.py sleeps through (BotOptions)
            raise Deferred(exc.retry_after, f"Discord rate limit: {exc}", rate_limited=True) from exc
        except discord.HTTPException as exc:  # discord.py already waited out shorter 429s; this is Discord being down
            if exc.status == 413 or exc.code == UPLOAD_TOO_LARGE:
                raise TooLarge(f"Discord refused the upload as too large: {exc.text}") from exc
            raise Deferred(5.0, f"Discord refused the edit: {exc.status} {exc.text}") from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise Deferred(5.0, f"Discord unreachable: {exc}") from exc

    async def upload_limit(self, channel_id: int) -> Limits:
        """What one attachment may weigh here: what the last interaction from this channel said (boosts and DMs
        included), else the server's by its boost tier as discord.py knows it, else a DM's."""
        said = await self.limits.get(channel_id) if self.limits is not None else None
        if said:
            return discord_limits(said)
        channel = self.client.get_channel(channel_id)
        guild = getattr(channel, "guild", None)
        limit = getattr(guild, "filesize_limit", None)
        return discord_limits(int(limit) if isinstance(limit, int) else None)

    async def _post_result(
        self, shown: MessageView, view: JobView, pictures: Finished, content: str, *, spoiler: bool
    ) -> None:
        """The result in the largest form the channel takes: the PNG when it fits, else a smaller form with a line
        saying where the full PNG is; a 413 (a limit lower than believed) sends the next smaller form at once."""
        buttons = result_view(view, mask_editor=self.mask_editor)
        limits = await self.upload_limit(int(shown.chat_id))
        pictures = replace(pictures, flagged=spoiler)  # the core decided, with the server's settings and the place
        url = result_download(self.web, view, lifetime_s=self.download_s)
        below: int | None = None
        while True:
            try:
                file, line, size = await asyncio.to_thread(
                    result_file, view, pictures, nsfw_channel=False, limits=limits, below=below, download_url=url
                )
            except NothingFits as exc:
                raise Gone(f"job {view.job_id}: {exc}") from exc
            try:
                await self._edit(shown, with_line(content, line), file=file, view=buttons)
                return
            except TooLarge:
                log.warning(
                    "job %s: an upload of %d bytes was refused as too large; sending a smaller form", view.job_id, size
                )
                below = size

    async def open(self, reply_to: MessageView, view: JobView) -> MessageView:
        """A job born on the web: its "Waiting to start" message, as a reply to the pressed message."""
        channel = self.client.get_partial_messageable(int(reply_to.chat_id))
        reference = discord.MessageReference(
            message_id=int(reply_to.message_id), channel_id=int(reply_to.chat_id), fail_if_not_exists=False
        )
        try:
            message = await channel.send(
                texts.waiting(view.display, view.user_id, locale=view.locale),
                reference=reference,
                allowed_mentions=texts.NO_MENTIONS,
            )
        except discord.Forbidden as exc:
            raise Gone(f"no permission to post in channel {reply_to.chat_id}: {exc.text}") from exc
        except discord.RateLimited as exc:
            raise Deferred(exc.retry_after, f"Discord rate limit: {exc}", rate_limited=True) from exc
        except discord.HTTPException as exc:
            raise Deferred(5.0, f"Discord refused the post: {exc.status} {exc.text}") from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise Deferred(5.0, f"Discord unreachable: {exc}") from exc
        return MessageView(PLATFORM, str(message.channel.id), str(message.id), "progress", view.queued_at)

    async def progress(self, shown: MessageView, view: JobView, step: Step) -> MessageView | None:
        if step.percent is None:
            return None  # still "Waiting to start", as posted
        preview = image_file(step.preview_png, "preview.png") if step.preview_png else None
        content = texts.progress(view.display, view.user_id, step.percent, view.mode, locale=view.locale)
        await self._edit(shown, content, file=preview)
        return None

    async def end(self, shown: MessageView, end: End) -> MessageView | None:
        view = end.view
        if view.status == "done" and end.withheld is not None:
            line = translate_line(end.withheld, view.locale)
            await self._edit(shown, texts.withheld(view.display, view.user_id, line), view=None)
            return shown
        if view.status == "done" and is_describe(view):
            picture = await asyncio.to_thread(describe_picture, view, self.images)
            extra: dict[str, Any] = {"embed": picture[0], "file": picture[1]} if picture is not None else {}
            await self._edit(
                shown, describe_content(view), view=describe_view(view.job_id, locale_of_job(view)), **extra
            )
            return shown
        if view.status == "done":
            pictures = await asyncio.to_thread(finished, self.images, view)
            noise = f"\n-# {t('caption.noise_note', view.locale)}" if end.paints_noise else ""
            content = result_content(view) + noise
            await self._post_result(shown, view, pictures, content, spoiler=end.spoiler)
            return shown
        if view.status == "cancelled":
            await self._edit(shown, texts.cancelled(view.display, view.user_id, locale=view.locale), view=None)
        else:
            reason = view.error or view.status
            await self._edit(shown, texts.failed(view.display, view.user_id, reason, locale=view.locale), view=None)
        return None
