"""What happens after a command, a button, a modal or a settings control: the job service is asked with typed
values, the results are posted, and each new job's message is followed from "Waiting to start" to its grid."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Coroutine, Sequence
from typing import Any

import discord

from impasto.bots.discord import replies, texts
from impasto.bots.discord.cogs.errors import REFUSALS, refuse, tell
from impasto.bots.discord.custom_ids import ButtonId, SettingId
from impasto.bots.discord.delivery import ChannelMessage, DeliveryError, MessageGone, Target, image_file, reply_to
from impasto.bots.discord.following import Failed, Finished, Follower, Orphan, Progress
from impasto.bots.discord.modals import modal_for
from impasto.bots.discord.progress import ProgressEditor
from impasto.bots.discord.requester import requester_of
from impasto.bots.discord.views import grid_view, settings_view, single_view, with_pressed
from impasto.bots.service.jobs import JobService
from impasto.bots.service.requester import Requester
from impasto.bots.service.views import JobTicket, JobView, PressResult, SettingsView
from impasto.queue.actions import ACTIONS, Action

log = logging.getLogger(__name__)
RECENT_JOBS = 4096
_Interaction = discord.Interaction[Any]


def _is_nsfw(client: discord.Client, channel_id: int) -> bool:
    channel = client.get_channel(channel_id)
    is_nsfw = getattr(channel, "is_nsfw", None)
    return bool(is_nsfw()) if callable(is_nsfw) else False


# -- a job as its message shows it ---------------------------------------------------------------------------------


def shows_grid(view: JobView) -> bool:
    """A 2×2 result (U/V buttons) or one image: from its images once done, from its action before."""
    if view.images:
        return view.is_grid
    return ACTIONS[Action(view.action)].output == "grid"


def result_content(view: JobView) -> str:
    what = ACTIONS[Action(view.action)].caption or ""
    if shows_grid(view):
        return texts.finished(view.display, view.user_id, view.mode, what=what)
    return texts.single(view.display, view.user_id, view.image_index or 1, what=what)


def result_view(view: JobView) -> discord.ui.View:
    return grid_view(view.job_id) if shows_grid(view) else single_view(view.job_id, 1)


def result_file(view: JobView, finished: Finished, *, nsfw_channel: bool) -> discord.File | None:
    data = finished.grid_png if shows_grid(view) and finished.grid_png else None
    if data is None and finished.images_png:
        data = finished.images_png[0]
    if data is None:
        return None
    return image_file(data, f"impasto_{view.job_id}.png", flagged=finished.flagged, nsfw_channel=nsfw_channel)


def settings_text(view: SettingsView) -> str:
    suffix = texts.code(view.settings_text) if view.settings_text else "(none)"
    return f"**Settings** — adjust your defaults. Current suffix: `{suffix}`"


def panel_view(view: SettingsView, models: Sequence[str]) -> discord.ui.View:
    return settings_view(
        models=models,
        model=view.model or (models[0] if models else ""),
        mode=view.mode,
        public=view.visibility == "public",
        remix=view.remix,
        raw=view.raw,
        stylize=view.stylize,
    )


class Controls:
    def __init__(
        self, service: JobService, follower: Follower, *, models: Sequence[str], min_edit_interval_s: float = 2.0
    ) -> None:
        self.service = service
        self.follower = follower
        self.models = list(models)
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

    async def follow(
        self, view: JobView, since: str, target: Target, *, nsfw_channel: bool, announced: bool = False
    ) -> None:
        editor = ProgressEditor(target, min_interval_s=self.min_edit_interval_s)
        self.followed.add(view.job_id)
        try:
            if not announced:
                await editor.finish(texts.waiting(view.display, view.user_id))
            if target.message_id is not None and target.channel_id is not None:
                await self.follower.remember(view.job_id, str(target.channel_id), str(target.message_id))
            async for event in self.follower.follow(view.job_id, since):
                if isinstance(event, Progress):
                    preview = image_file(event.preview_png, "preview.png") if event.preview_png else None
                    await editor.update(texts.progress(view.display, view.user_id, event.percent, view.mode), preview)
                    continue
                await self._post_end(editor.finish, view, event, nsfw_channel=nsfw_channel)
                return
        except MessageGone:
            log.info("job %s: its message was deleted; no longer following", view.job_id)
        except DeliveryError:
            log.exception("job %s: could not update its message", view.job_id)
        except Exception:
            # A follower is a background task: nothing else would ever see its error.
            log.exception("job %s: following it failed", view.job_id)
        finally:
            self.followed.discard(view.job_id)
            self._recent[view.job_id] = None
            while len(self._recent) > RECENT_JOBS:
                self._recent.popitem(last=False)

    async def _post_end(
        self,
        edit: Any,
        view: JobView,
        event: Finished | Failed,
        *,
        nsfw_channel: bool,
    ) -> None:
        if isinstance(event, Finished):
            file = result_file(view, event, nsfw_channel=nsfw_channel)
            content = result_content(view) + (f"\n-# {event.note}" if event.note else "")
            await edit(content, file=file, view=result_view(view))
        elif event.cancelled:
            await edit(texts.cancelled(view.display, view.user_id))
        else:
            await edit(texts.failed(view.display, view.user_id, event.reason))

    def is_followed(self, job_id: str) -> bool:
        return job_id in self.followed or job_id in self._recent

    async def finish_orphan(self, client: discord.Client, orphan: Orphan) -> None:
        """Post the end of a job nobody followed (it finished while the bot was restarting) on its message."""
        channel = client.get_partial_messageable(int(orphan.channel_id))
        target = ChannelMessage(channel.get_partial_message(int(orphan.message_id)))
        nsfw = _is_nsfw(client, int(orphan.channel_id))
        try:
            await self._post_end(target.edit, orphan.view, orphan.event, nsfw_channel=nsfw)
        except DeliveryError:
            log.warning("job %s: could not post its result on message %s", orphan.view.job_id, orphan.message_id)

    async def catch_up(self, client: discord.Client, *, consumer: str) -> None:
        """Run for the bot's lifetime: finish the messages of jobs that ended while no process followed them."""
        while True:
            try:
                async for orphan in self.follower.orphans(consumer=consumer, is_followed=self.is_followed):
                    await self.finish_orphan(client, orphan)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("catching up on finished jobs failed; retrying")
                await asyncio.sleep(1.0)

    async def start_jobs(
        self,
        interaction: _Interaction,
        tickets: Sequence[JobTicket],
        since: str,
        first: Target | None,
        who: Requester,
    ) -> None:
        """Follow each job: the first in ``first`` (a slash command's response), the others in replies."""
        for position, ticket in enumerate(tickets):
            view = await self.service.job(ticket.job_id)
            if position == 0 and first is not None:
                self.spawn(self.follow(view, since, first, nsfw_channel=who.nsfw_channel))
                continue
            message = await reply_to(interaction, texts.waiting(view.display, view.user_id))
            self.spawn(self.follow(view, since, message, nsfw_channel=who.nsfw_channel, announced=True))
        # Midjourney's "Job queued" line, once, to the requester alone (the jobs start as their others end).
        for notice in dict.fromkeys(ticket.notice for ticket in tickets if ticket.notice):
            await tell(interaction, f"⏳ {notice}")

    # -- buttons ---------------------------------------------------------------------------------------------------

    async def guarded(self, interaction: _Interaction, handling: Awaitable[None]) -> None:
        """Run a control's handler; a refusal from the core becomes its one private line."""
        try:
            await handling
        except REFUSALS as refusal:
            await refuse(interaction, refusal)

    async def on_button(self, interaction: _Interaction, button: ButtonId) -> None:
        await self.guarded(interaction, self._on_button(interaction, button))

    async def _press(
        self, who: Requester, button: ButtonId, *, idempotency_key: str, remix_text: str | None = None
    ) -> PressResult:
        return await self.service.press(
            who,
            button.job_id,
            button.action,
            button.index or None,
            idempotency_key=idempotency_key,
            remix_text=remix_text,
        )

    async def _on_button(self, interaction: _Interaction, button: ButtonId) -> None:
        who = requester_of(interaction)
        source = interaction.message
        source_id = source.id if source is not None else interaction.id
        # The same person pressing the same button twice gets the same job (and one charge); others get their own.
        key = f"discord:{source_id}:{button.encode()}:{who.user_id}"
        since = await self.follower.position()
        if button.action.remixable:
            # A modal must be the first answer, so ask first whether Remix wants one (a quick read, no render yet).
            result = await self._press(who, button, idempotency_key=key)
            if result.kind == "remix":
                await interaction.response.send_modal(self._modal(button, result.view.display))
                return
            await self._mark_pressed(interaction, button)
        else:
            await self._mark_pressed(interaction, button)
            result = await self._press(who, button, idempotency_key=key)
        await self.deliver(interaction, result, since, who)

    def _modal(self, button: ButtonId, prompt: str) -> discord.ui.Modal:
        async def submitted(interaction: _Interaction, text: str) -> None:
            async def handling() -> None:
                await self._mark_pressed(interaction, button)
                who = requester_of(interaction)
                since = await self.follower.position()
                result = await self._press(who, button, idempotency_key=f"discord:{interaction.id}", remix_text=text)
                await self.deliver(interaction, result, since, who)

            await self.guarded(interaction, handling())

        return modal_for(button.action, prompt, submitted)

    async def _mark_pressed(self, interaction: _Interaction, button: ButtonId) -> None:
        """Acknowledge the press by turning its button blue on the source message (one call, within 3 s)."""
        if interaction.message is not None and button.action is not Action.FAVORITE:
            await interaction.response.edit_message(view=with_pressed(interaction.message, button.encode()))
        else:
            await interaction.response.defer()

    async def deliver(self, interaction: _Interaction, result: PressResult, since: str, who: Requester) -> None:
        view = result.view
        if result.kind == "favorite":
            await tell(interaction, "❤️ Added to your favorites" if view.favorite else "Removed from your favorites")
        elif result.kind == "details":
            await tell(interaction, replies.details(view))
        elif result.kind == "image":
            image = view.image(1) or (view.images[0] if view.images else None)
            if image is None:
                await tell(interaction, texts.refusal(f"job {view.job_id} has no image to show yet"))
                return
            png = await asyncio.to_thread(self.service.images.get, image.key)
            file = image_file(png, f"impasto_{view.job_id}.png")
            message = await reply_to(interaction, result_content(view), file=file, view=result_view(view))
            if message.message_id is not None and message.channel_id is not None:
                await self.follower.remember(view.job_id, str(message.channel_id), str(message.message_id))
        elif result.kind == "job" and result.ticket is not None:
            await self.start_jobs(interaction, [result.ticket], since, None, who)

    # -- the settings panel ----------------------------------------------------------------------------------------

    async def on_setting(self, interaction: _Interaction, setting: SettingId, values: Sequence[str]) -> None:
        await interaction.response.defer()
        await self.guarded(interaction, self._on_setting(interaction, setting, values))

    async def _on_setting(self, interaction: _Interaction, setting: SettingId, values: Sequence[str]) -> None:
        who = requester_of(interaction)
        value = values[0] if values else setting.value
        current = await self.service.settings(who)
        update = self.service.update_settings
        key = setting.key
        if key == "raw":
            view = await update(who, raw=not current.raw)
        elif key == "public":
            view = await update(who, visibility="stealth" if current.visibility == "public" else "public")
        elif key == "remix":
            view = await update(who, remix=not current.remix)
        elif key == "mode" and value:
            view = await update(who, mode=value)
        elif key == "model" and value:
            view = await update(who, model=value)
        elif key == "stylize" and value and value.isdigit():
            chosen = int(value)
            view = await (update(who, clear_stylize=True) if current.stylize == chosen else update(who, stylize=chosen))
        elif key == "reset":
            view = await update(who, reset=True)
        else:
            await tell(interaction, texts.refusal(f"unknown setting {key!r}"))
            return
        await interaction.edit_original_response(
            content=settings_text(view), view=panel_view(view, self.models), allowed_mentions=texts.NO_MENTIONS
        )


__all__ = ["ChannelMessage", "Controls"]
