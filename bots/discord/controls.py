"""What happens after a button, a modal or a settings control: the job service is asked, the results are posted,
and each new job's message is followed from "Waiting to start" to its grid."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Coroutine, Sequence
from typing import Any

import discord

from impasto.bots.discord import texts
from impasto.bots.discord.backend import (
    Backend,
    CatchUp,
    Failed,
    Finished,
    JobCard,
    Orphan,
    PressResult,
    Progress,
    SettingsPanel,
    UserFacingError,
)
from impasto.bots.discord.custom_ids import ButtonId, SettingId
from impasto.bots.discord.delivery import ChannelMessage, DeliveryError, MessageGone, Target, image_file, reply_to
from impasto.bots.discord.modals import modal_for
from impasto.bots.discord.progress import ProgressEditor
from impasto.bots.discord.requester import requester_of
from impasto.bots.discord.views import grid_view, settings_view, single_view, with_pressed
from impasto.bots.service.requester import Requester
from impasto.queue.actions import Action

log = logging.getLogger(__name__)
RECENT_JOBS = 4096
_Interaction = discord.Interaction[Any]


def _is_nsfw(client: discord.Client, channel_id: int) -> bool:
    channel = client.get_channel(channel_id)
    is_nsfw = getattr(channel, "is_nsfw", None)
    return bool(is_nsfw()) if callable(is_nsfw) else False


async def tell(interaction: _Interaction, text: str) -> None:
    """A line only the presser sees, after the interaction was acknowledged."""
    await interaction.followup.send(text, ephemeral=True, allowed_mentions=texts.NO_MENTIONS)


def result_view(card: JobCard) -> discord.ui.View:
    return grid_view(card.id) if card.kind == "grid" else single_view(card.id, 1)


def result_content(card: JobCard) -> str:
    if card.kind == "grid":
        return texts.finished(card.prompt, card.owner_id, card.mode, what=card.what)
    return texts.single(card.prompt, card.owner_id, card.index or 1, what=card.what)


def result_file(card: JobCard, finished: Finished, *, nsfw_channel: bool) -> discord.File | None:
    data = finished.grid_png if card.kind == "grid" and finished.grid_png else None
    if data is None and finished.images_png:
        data = finished.images_png[0]
    if data is None:
        return None
    return image_file(data, f"impasto_{card.id}.png", flagged=finished.flagged, nsfw_channel=nsfw_channel)


def settings_text(panel: SettingsPanel) -> str:
    suffix = texts.escape(panel.suffix) if panel.suffix else "(none)"
    return f"**Settings** — adjust your defaults. Current suffix: `{suffix}`"


def panel_view(panel: SettingsPanel) -> discord.ui.View:
    return settings_view(
        models=panel.models,
        model=panel.model,
        mode=panel.mode,
        public=panel.public,
        remix=panel.remix,
        raw=panel.raw,
        stylize=panel.stylize,
    )


class Controls:
    def __init__(self, backend: Backend, *, min_edit_interval_s: float = 2.0) -> None:
        self.backend = backend
        self.min_edit_interval_s = min_edit_interval_s
        self._tasks: set[asyncio.Task[None]] = set()
        self.followed: set[str] = set()  # job ids whose message this process is updating
        self._recent: OrderedDict[str, None] = OrderedDict()  # ... or updated lately (their final event may lag)

    # -- following jobs --------------------------------------------------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def idle(self) -> None:
        """Wait for every job being followed (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def follow(self, card: JobCard, target: Target, *, nsfw_channel: bool, announced: bool = False) -> None:
        editor = ProgressEditor(target, min_interval_s=self.min_edit_interval_s)
        self.followed.add(card.id)
        try:
            if not announced:
                await editor.finish(texts.waiting(card.prompt, card.owner_id))
            if target.message_id is not None and target.channel_id is not None:
                await self.backend.record_message(card.id, str(target.channel_id), str(target.message_id))
            async for event in self.backend.follow(card.id):
                if isinstance(event, Progress):
                    preview = image_file(event.preview_png, "preview.png") if event.preview_png else None
                    await editor.update(texts.progress(card.prompt, card.owner_id, event.percent, card.mode), preview)
                elif isinstance(event, Finished):
                    file = result_file(card, event, nsfw_channel=nsfw_channel)
                    content = result_content(card) + (f"\n-# {event.note}" if event.note else "")
                    await editor.finish(content, file, result_view(card))
                    return
                elif isinstance(event, Failed):
                    if event.cancelled:
                        await editor.finish(texts.cancelled(card.prompt, card.owner_id))
                    else:
                        await editor.finish(texts.failed(card.prompt, card.owner_id, event.reason))
                    return
        except MessageGone:
            log.info("job %s: its message was deleted; no longer following", card.id)
        except DeliveryError:
            log.exception("job %s: could not update its message", card.id)
        except Exception:
            # A follower is a background task: nothing else would ever see its error.
            log.exception("job %s: following it failed", card.id)
        finally:
            self.followed.discard(card.id)
            self._recent[card.id] = None
            while len(self._recent) > RECENT_JOBS:
                self._recent.popitem(last=False)

    def is_followed(self, job_id: str) -> bool:
        return job_id in self.followed or job_id in self._recent

    async def finish_orphan(self, client: discord.Client, orphan: Orphan) -> None:
        """Post the end of a job nobody followed (it finished while the bot was restarting) on its message."""
        channel = client.get_partial_messageable(int(orphan.channel_id))
        target = ChannelMessage(channel.get_partial_message(int(orphan.message_id)))
        card, event = orphan.card, orphan.event
        try:
            if isinstance(event, Finished):
                file = result_file(card, event, nsfw_channel=_is_nsfw(client, int(orphan.channel_id)))
                content = result_content(card) + (f"\n-# {event.note}" if event.note else "")
                await target.edit(content, file=file, view=result_view(card))
            elif event.cancelled:
                await target.edit(texts.cancelled(card.prompt, card.owner_id))
            else:
                await target.edit(texts.failed(card.prompt, card.owner_id, event.reason))
        except DeliveryError:
            log.warning("job %s: could not post its result on message %s", card.id, orphan.message_id)

    async def catch_up(self, client: discord.Client, source: CatchUp, *, consumer: str) -> None:
        """Run for the bot's lifetime: finish the messages of jobs that ended while no process followed them."""
        while True:
            try:
                async for orphan in source.orphans(consumer=consumer, is_followed=self.is_followed):
                    await self.finish_orphan(client, orphan)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("catching up on finished jobs failed; retrying")
                await asyncio.sleep(1.0)

    async def start_jobs(
        self, interaction: _Interaction, cards: Sequence[JobCard], first: Target | None, who: Requester
    ) -> None:
        """Follow each job: the first in ``first`` (a slash command's response), the others in replies."""
        for position, card in enumerate(cards):
            if position == 0 and first is not None:
                self.spawn(self.follow(card, first, nsfw_channel=who.nsfw_channel))
                continue
            message = await reply_to(interaction, texts.waiting(card.prompt, card.owner_id))
            self.spawn(self.follow(card, message, nsfw_channel=who.nsfw_channel, announced=True))
        # Midjourney's "Job queued" line, once, to the requester alone (the jobs start as their others end).
        for notice in dict.fromkeys(card.notice for card in cards if card.notice):
            await tell(interaction, f"⏳ {notice}")

    # -- buttons ---------------------------------------------------------------------------------------------------

    async def on_button(self, interaction: _Interaction, button: ButtonId) -> None:
        who = requester_of(interaction)
        source = interaction.message
        source_id = source.id if source is not None else interaction.id
        # The same person pressing the same button twice gets the same job (and one charge); others get their own.
        key = f"discord:{source_id}:{button.encode()}:{who.user_id}"
        if button.action.remixable:
            # A modal must be the first answer, so ask first whether Remix wants one (a quick read, no render yet).
            try:
                result = await self.backend.press(who, button.job_id, button.action, button.index, idempotency_key=key)
            except UserFacingError as exc:
                await interaction.response.send_message(texts.refusal(exc.message), ephemeral=True)
                return
            if result.modal_prompt is not None:
                await interaction.response.send_modal(self._modal(button, result.modal_prompt, who))
                return
            await self._mark_pressed(interaction, button)
        else:
            await self._mark_pressed(interaction, button)
            try:
                result = await self.backend.press(who, button.job_id, button.action, button.index, idempotency_key=key)
            except UserFacingError as exc:
                await tell(interaction, texts.refusal(exc.message))
                return
        await self.deliver(interaction, button, result, who)

    def _modal(self, button: ButtonId, prompt: str, who: Requester) -> discord.ui.Modal:
        async def submitted(interaction: _Interaction, text: str) -> None:
            await self._mark_pressed(interaction, button)
            try:
                result = await self.backend.press(
                    requester_of(interaction),
                    button.job_id,
                    button.action,
                    button.index,
                    idempotency_key=f"discord:{interaction.id}",
                    remix_text=text,
                )
            except UserFacingError as exc:
                await tell(interaction, texts.refusal(exc.message))
                return
            await self.deliver(interaction, button, result, requester_of(interaction))

        return modal_for(button.action, prompt, submitted)

    async def _mark_pressed(self, interaction: _Interaction, button: ButtonId) -> None:
        """Acknowledge the press by turning its button blue on the source message (one call, within 3 s)."""
        if interaction.message is not None and button.action is not Action.FAVORITE:
            await interaction.response.edit_message(view=with_pressed(interaction.message, button.encode()))
        else:
            await interaction.response.defer()

    async def deliver(self, interaction: _Interaction, button: ButtonId, result: PressResult, who: Requester) -> None:
        if result.notice:
            await tell(interaction, result.notice)
        if result.single is not None and result.single_png is not None:
            card = result.single
            file = image_file(result.single_png, f"impasto_{card.id}.png")
            message = await reply_to(interaction, result_content(card), file=file, view=result_view(card))
            if message.message_id is not None and message.channel_id is not None:
                await self.backend.record_message(card.id, str(message.channel_id), str(message.message_id))
        if result.jobs:
            await self.start_jobs(interaction, result.jobs, None, who)

    # -- the settings panel ----------------------------------------------------------------------------------------

    async def on_setting(self, interaction: _Interaction, setting: SettingId, values: Sequence[str]) -> None:
        await interaction.response.defer()
        who = requester_of(interaction)
        value = values[0] if values else setting.value
        try:
            panel = await self.backend.update_setting(who, setting.key, value)
        except UserFacingError as exc:
            await tell(interaction, texts.refusal(exc.message))
            return
        await interaction.edit_original_response(
            content=settings_text(panel), view=panel_view(panel), allowed_mentions=texts.NO_MENTIONS
        )


__all__ = ["ChannelMessage", "Controls"]
