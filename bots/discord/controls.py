"""What happens after a command, a button, a modal or a settings control: the job service is asked with typed
values, and each new job gets its "Waiting to start" message, recorded in the message index; from there the delivery
core (``bots/service/delivery``, through ``surface.DiscordSurface``) edits it up to the grid."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Coroutine, Sequence
from typing import Any

import discord

from impasto.bots.discord import replies, texts
from impasto.bots.discord.cogs.errors import REFUSALS, refuse, tell
from impasto.bots.discord.custom_ids import ButtonId, SettingId
from impasto.bots.discord.delivery import ChannelMessage, Target, image_file, reply_to
from impasto.bots.discord.language import client_locale, reply_locale
from impasto.bots.discord.modals import PromptModal, modal_for
from impasto.bots.discord.requester import requester_of
from impasto.bots.discord.surface import PLATFORM, result_content, result_view
from impasto.bots.discord.views import settings_view, with_pressed
from impasto.bots.i18n.catalog import t
from impasto.bots.i18n.refusals import localize
from impasto.bots.service.delivery.core import Delivery
from impasto.bots.service.describe import chosen_prompts
from impasto.bots.service.errors import InvalidRequest
from impasto.bots.service.jobs import JobService
from impasto.bots.service.outages import outage_line
from impasto.bots.service.requester import Requester
from impasto.bots.service.views import JobTicket, PressResult, SettingsView
from impasto.bots.web.links import WebLinkSettings, editor_link
from impasto.queue.actions import Action

log = logging.getLogger(__name__)
_Interaction = discord.Interaction[Any]


def settings_text(view: SettingsView) -> str:
    """The panel's heading, in the language replies come in (``view.locale``), with the reply language named."""
    locale = view.locale
    suffix = texts.code(view.settings_text) if view.settings_text else t("settings.none", locale)
    language = t(f"language.{view.locale}", view.locale)
    return f"{t('settings.heading', locale, suffix=suffix)}\n{t('settings.language', locale, language=language)}"


def panel_view(view: SettingsView, models: Sequence[str]) -> discord.ui.View:
    return settings_view(
        models=models,
        model=view.model or (models[0] if models else ""),
        mode=view.mode,
        public=view.visibility == "public",
        remix=view.remix,
        raw=view.raw,
        stylize=view.stylize,
        language=view.language,
        locale=view.locale,
    )


class Controls:
    def __init__(
        self,
        service: JobService,
        delivery: Delivery,
        *,
        models: Sequence[str],
        web: WebLinkSettings | None = None,
        download_s: int | None = None,
    ) -> None:
        self.service = service
        self.delivery = delivery
        self.models = list(models)
        self.web = web  # the web front door: Vary (Region) opens its editor; /history and /public link galleries
        self.download_s = download_s  # how long a full PNG's download link works (None: links.LIFETIMES)
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- new jobs --------------------------------------------------------------------------------------------------

    async def shows(self, job_id: str, target: Target, kind: str) -> None:
        """Index the message that shows the job; if the job already ended, the core posts its end now."""
        if target.message_id is None or target.channel_id is None:
            return
        await self.service.record_message(job_id, PLATFORM, str(target.channel_id), str(target.message_id), kind)
        if kind == "progress":
            await self.delivery.shown(job_id)

    async def start_jobs(
        self, interaction: _Interaction, tickets: Sequence[JobTicket], first: Target | None, who: Requester
    ) -> None:
        """A "Waiting to start" message for each job: the first in ``first`` (a slash command's response), the
        others as replies."""
        locale = "en"
        for position, ticket in enumerate(tickets):
            view = await self.service.job(ticket.job_id)
            locale = view.locale
            waiting = texts.waiting(view.display, view.user_id, locale=locale)
            if position == 0 and first is not None:
                await first.edit(waiting)
                target: Target = first
            else:
                target = await reply_to(interaction, waiting)
            await self.shows(view.job_id, target, "progress")
        # Midjourney's "Job queued" line, once, to the requester alone (the jobs start as their others end).
        for notice in dict.fromkeys(ticket.notice for ticket in tickets if ticket.notice):
            await tell(interaction, f"⏳ {localize(notice, locale)}")

    # -- buttons ---------------------------------------------------------------------------------------------------

    async def guarded(self, interaction: _Interaction, handling: Awaitable[None]) -> None:
        """Run a control's handler; a refusal from the core becomes its one private line, and so does an outage
        (Redis or the database restarting: nothing was charged)."""
        try:
            await handling
        except REFUSALS as refusal:
            await refuse(interaction, refusal)
        except Exception as exc:
            outage = outage_line(exc)
            if outage is None:
                raise
            log.warning("a control met an outage: %s", exc)
            line = f"⚠️ {localize(outage, client_locale(interaction))}"
            if interaction.response.is_done():
                await tell(interaction, line)
            else:
                await interaction.response.send_message(line, ephemeral=True)

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
        if button.action.row.needs_mask:
            await self._open_editor(interaction, button, who)
            return
        if button.action is Action.DESCRIBE_PICK:
            # Midjourney opens the chosen prompt in a dialog to edit before it is imagined.
            described = await self.service.job(button.job_id)
            prompts = chosen_prompts(described, button.action, button.index)
            locale = await reply_locale(interaction)
            await interaction.response.send_modal(
                self._modal(button, prompts[0], locale, title=t("describe.modal_title", locale))
            )
            return
        if button.action.remixable:
            # A modal must be the first answer, so ask first whether Remix wants one (a quick read, no render yet).
            result = await self._press(who, button, idempotency_key=key)
            if result.kind == "remix":
                await interaction.response.send_modal(
                    self._modal(button, result.view.display, await reply_locale(interaction))
                )
                return
            await self._mark_pressed(interaction, button)
        else:
            await self._mark_pressed(interaction, button)
            result = await self._press(who, button, idempotency_key=key)
        await self.deliver(interaction, result, who)

    async def _open_editor(self, interaction: _Interaction, button: ButtonId, who: Requester) -> None:
        """Vary (Region): the region is drawn in the web editor. The presser alone gets a link (ephemeral), signed for
        them and this image; the result is posted here, as a reply to the pressed message."""
        if self.web is None:
            raise InvalidRequest("Vary (Region) needs the web editor, which this bot has not been set up with")
        await self.service.job(button.job_id)  # an unknown job is refused by name, before a link is made
        locale = await reply_locale(interaction)
        source = str(interaction.message.id) if interaction.message is not None else None
        url = editor_link(self.web, who, button.job_id, button.index or None, source, lang=locale)
        link = discord.ui.View()
        label = t("reply.region_button", locale)
        link.add_item(discord.ui.Button(style=discord.ButtonStyle.link, url=url, label=label))
        await interaction.response.send_message(t("reply.region_open", locale), view=link, ephemeral=True)

    def _modal(self, button: ButtonId, prompt: str, locale: str, *, title: str | None = None) -> discord.ui.Modal:
        async def submitted(interaction: _Interaction, text: str) -> None:
            async def handling() -> None:
                await self._mark_pressed(interaction, button)
                who = requester_of(interaction)
                result = await self._press(who, button, idempotency_key=f"discord:{interaction.id}", remix_text=text)
                await self.deliver(interaction, result, who)

            await self.guarded(interaction, handling())

        if title is not None:
            return PromptModal(title, prompt, submitted, locale=locale)
        return modal_for(button.action, prompt, submitted, locale=locale)

    async def _mark_pressed(self, interaction: _Interaction, button: ButtonId) -> None:
        """Acknowledge the press by turning its button blue on the source message (one call, within 3 s)."""
        if interaction.message is not None and button.action is not Action.FAVORITE:
            await interaction.response.edit_message(view=with_pressed(interaction.message, button.encode()))
        else:
            await interaction.response.defer()

    async def deliver(self, interaction: _Interaction, result: PressResult, who: Requester) -> None:
        view = result.view
        if result.kind == "favorite":
            locale = await reply_locale(interaction)
            await tell(interaction, t("reply.favorite_added" if view.favorite else "reply.favorite_removed", locale))
        elif result.kind == "details":
            await tell(interaction, replies.details(view, await reply_locale(interaction)))
        elif result.kind == "image":
            image = view.image(1) or (view.images[0] if view.images else None)
            if image is None:
                locale = await reply_locale(interaction)
                await tell(interaction, texts.refusal(t("service.no_image_yet", locale, job=view.job_id)))
                return
            png = await asyncio.to_thread(self.service.images.get, image.key)
            file = image_file(png, f"impasto_{view.job_id}.png", flagged=result.spoiler)  # the service decided
            view_buttons = result_view(view, mask_editor=self.web is not None)
            message = await reply_to(interaction, result_content(view), file=file, view=view_buttons)
            await self.shows(view.job_id, message, "result")
        elif result.kind == "job" and result.ticket is not None:
            await self.start_jobs(interaction, list(result.tickets) or [result.ticket], None, who)

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
        elif key == "language" and value:
            view = await self.service.set_language(who, value)
        else:
            locale = await reply_locale(interaction)
            await tell(interaction, texts.refusal(t("service.unknown_setting", locale, setting=repr(key))))
            return
        await interaction.edit_original_response(
            content=settings_text(view), view=panel_view(view, self.models), allowed_mentions=texts.NO_MENTIONS
        )


__all__ = ["ChannelMessage", "Controls"]
