"""The adapter's ``Backend`` over the real job service, the image store and the queue's event stream."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Literal, TypeVar

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from impasto.bots.discord import texts
from impasto.bots.discord.backend import (
    Attached,
    Details,
    Event,
    Failed,
    Finished,
    JobCard,
    Orphan,
    PressResult,
    Progress,
    SettingsPanel,
    UserFacingError,
)
from impasto.bots.language.errors import PromptError
from impasto.bots.service.errors import ServiceError
from impasto.bots.service.jobs import JobService
from impasto.bots.service.requester import Requester
from impasto.bots.service.views import InfoView, JobView, SettingsView
from impasto.queue import events, keys
from impasto.queue.actions import ACTIONS, Action

T = TypeVar("T")
log = logging.getLogger(__name__)
RECONNECT_S = 0.5
EVENT_GROUP = "discord"  # one consumer group for every Discord bot process
# Our own key under the queue's prefix: job id → "channel:message" of the message showing it.
MESSAGE_KEY = keys.PREFIX + "discord:message:{job_id}"
DELIVERED_KEY = keys.PREFIX + "discord:delivered:{job_id}"  # set once: who posts a job's end
MESSAGE_TTL_S = 7 * 24 * 3600
NOISE_NOTE = "made by a built-in tiny test model: the picture is noise"

_FINAL = ("done", "failed", "cancelled")
MODE_REPLIES = {
    "fast": "Fast mode on: your jobs use fast GPU time.",
    "relax": "Relax mode on: your jobs wait for idle GPUs and use no fast time.",
    "turbo": "Turbo mode on: your jobs run fastest, at twice the fast time.",
}


def card_of(view: JobView, *, kind: str | None = None) -> JobCard:
    return JobCard(
        id=view.job_id,
        prompt=view.display,
        owner_id=view.user_id,
        mode=view.mode,
        kind=kind or ACTIONS[Action(view.action)].output,
        what=ACTIONS[Action(view.action)].caption or "",
        index=view.image_index or 0,
    )


async def _refusing(call: Awaitable[T]) -> T:
    """The one place service and prompt errors become the adapter's user-facing refusal."""
    try:
        return await call
    except (ServiceError, PromptError) as exc:
        raise UserFacingError(exc.message) from exc


def format_info(info: InfoView) -> str:
    running = ", ".join(info.running_jobs) or "None"
    lines = [
        f"**User ID**: {info.user_id}",
        f"**Subscription**: {texts.escape(info.plan)} (renews next on {info.renews_on.isoformat()})",
        f"**Job Mode**: {info.mode.title()}",
        f"**Visibility Mode**: {info.visibility.title()}",
        f"**Remix**: {'On' if info.remix else 'Off'}",
        f"**Fast Time Remaining**: {info.fast_remaining_hours:.2f}/{info.fast_limit_hours:.1f} hours "
        f"({info.fast_remaining_percent:.2f}%)",
        f"**Lifetime Usage**: {info.lifetime_images} images ({info.lifetime_hours:.2f} hours)",
        f"**Relaxed Usage**: {info.relaxed_images} images ({info.relaxed_hours:.2f} hours)",
    ]
    lines += [f"**Queued Jobs ({lane})**: {count}" for lane, count in info.queued_jobs.items()]
    lines.append(f"**Running Jobs**: {running}")
    return "\n".join(lines)


def format_details(view: JobView) -> str:
    params = ", ".join(
        f"{key}={value}" for key, value in sorted(view.params.items()) if value not in (None, [], {}, "", False)
    )
    return "\n".join(
        [
            f"**Job ID**: {view.job_id}",
            f"**Seed**: {view.seed}",
            f"**Prompt**: {texts.escape(view.display)}",
            f"**Model**: {view.model} · **Mode**: {view.mode} · **Status**: {view.status}",
            f"**Parameters**: {texts.escape(params)}"[: texts.MAX_MESSAGE // 2],
        ]
    )


class ServiceBackend:
    def __init__(self, service: JobService, redis: Redis, *, models: Sequence[str] | None = None) -> None:
        self.service = service
        self.redis = redis
        self.store = service.images
        self.models = list(models) if models is not None else service.registry.names()
        self._since: dict[str, str] = {}  # job id -> stream position from before it was submitted

    # -- making jobs ---------------------------------------------------------------------------------------------

    async def imagine(
        self, who: Requester, text: str, *, images: Sequence[Attached], idempotency_key: str
    ) -> Sequence[JobCard]:
        since = await events.last_id(self.redis)
        tickets = await _refusing(
            self.service.imagine(who, text, image_urls=[i.url for i in images], idempotency_key=idempotency_key)
        )
        cards = []
        for ticket in tickets:
            self._since.setdefault(ticket.job_id, since)
            cards.append(JobCard(ticket.job_id, ticket.display, who.user_id, ticket.mode, notice=ticket.notice or ""))
        return cards

    async def blend(
        self, who: Requester, images: Sequence[Attached], *, dimensions: str, idempotency_key: str
    ) -> Sequence[JobCard]:
        since = await events.last_id(self.redis)
        keys = [self.store.put(image.data) for image in images]
        tickets = await _refusing(
            self.service.blend(
                who, [i.url for i in images], dimensions, idempotency_key=idempotency_key, image_keys=keys
            )
        )
        for ticket in tickets:
            self._since.setdefault(ticket.job_id, since)
        return [JobCard(t.job_id, t.display, who.user_id, t.mode, notice=t.notice or "") for t in tickets]

    async def press(
        self,
        who: Requester,
        job_id: str,
        action: Action,
        index: int,
        *,
        idempotency_key: str,
        remix_text: str | None = None,
    ) -> PressResult:
        since = await events.last_id(self.redis)
        result = await _refusing(
            self.service.press(
                who, job_id, action, index or None, idempotency_key=idempotency_key, remix_text=remix_text
            )
        )
        view = result.view
        if result.kind == "remix":
            return PressResult(modal_prompt=view.display)
        if result.kind == "favorite":
            return PressResult(notice="❤️ Added to your favorites" if view.favorite else "Removed from your favorites")
        if result.kind == "details":
            return PressResult(notice=format_details(view))
        if result.kind == "image":
            image = view.image(1) or (view.images[0] if view.images else None)
            if image is None:
                raise UserFacingError(f"job {view.job_id} has no image to show yet")
            return PressResult(single=card_of(view, kind="single"), single_png=self.store.get(image.key))
        self._since.setdefault(view.job_id, since)
        notice = result.ticket.notice if result.ticket is not None else None
        return PressResult(jobs=[replace(card_of(view), notice=notice or "")])

    # -- following -----------------------------------------------------------------------------------------------

    def _finished(self, view: JobView) -> Finished:
        grid = view.image(0)
        singles = tuple(self.store.get(i.key) for i in sorted(view.images, key=lambda i: i.index) if i.index > 0)
        return Finished(grid_png=self.store.get(grid.key) if grid is not None else None, images_png=singles)

    async def follow(self, job_id: str) -> AsyncIterator[Event]:
        since = self._since.pop(job_id, None) or await events.last_id(self.redis)
        view = await self.service.job(job_id)
        if view.status in _FINAL:
            yield self._final_from_view(view)
            return
        while True:
            try:
                async for event in events.listen(self.redis, job_ids=[job_id], since=since):
                    translated = await self._translate(job_id, event)
                    if isinstance(translated, Progress):
                        yield translated
                    elif translated is not None:
                        if await self._claim_final(job_id):
                            yield translated
                        return
                return
            except RedisConnectionError:
                # Redis went away mid-read: wait, then look at the job row (the truth) before listening again.
                log.warning("job %s: lost the event stream; reconnecting", job_id)
                await asyncio.sleep(RECONNECT_S)
                view = await self.service.job(job_id)
                if view.status in _FINAL:
                    if await self._claim_final(job_id):
                        yield self._final_from_view(view)
                    return

    async def _translate(self, job_id: str, event: events.Event) -> Event | None:
        if isinstance(event, events.Started):
            return Progress(0)
        if isinstance(event, events.Progress):
            return Progress(event.step * 100 // max(1, event.total), event.preview_png)
        if isinstance(event, events.Done):
            finished = self._finished(await self.service.job(job_id))
            if event.paints_noise:
                return replace(finished, note=NOISE_NOTE)
            return finished
        if isinstance(event, events.Failed):
            return Failed(event.message)
        if isinstance(event, events.Cancelled):
            return Failed("cancelled", cancelled=True)
        return None

    def _final_from_view(self, view: JobView) -> Event:
        if view.status == "done":
            return self._finished(view)
        return Failed(view.error or view.status, cancelled=view.status == "cancelled")

    async def _claim_final(self, job_id: str) -> bool:
        """Win the right to post a job's end. Several bot processes may hear the same final event (the follower in
        one, the catch-up consumer in another); only the first to claim edits the message, so it changes once."""
        claimed = await self.redis.set(DELIVERED_KEY.format(job_id=job_id), "1", nx=True, ex=MESSAGE_TTL_S)
        return bool(claimed)

    async def record_message(self, job_id: str, channel_id: str, message_id: str) -> None:
        await _refusing(self.service.record_message(job_id, "discord", channel_id, message_id, "result"))
        # The reverse map (job → its newest message) lets any process finish the message after a restart.
        await self.redis.set(MESSAGE_KEY.format(job_id=job_id), f"{channel_id}:{message_id}", ex=MESSAGE_TTL_S)

    async def orphans(self, *, consumer: str, is_followed: Callable[[str], bool]) -> AsyncIterator[Orphan]:
        """Final events of jobs with a Discord message that no follower in this process is updating."""
        async for delivery in events.consume(self.redis, group=EVENT_GROUP, consumer=consumer):
            event = delivery.event
            try:
                if not event.final or is_followed(event.job_id):
                    continue
                where = await self.redis.get(MESSAGE_KEY.format(job_id=event.job_id))
                if where is None:
                    continue
                channel_id, _, message_id = where.decode().partition(":")
                view = await self.service.job(event.job_id)
                final = self._final_from_view(view)
                if isinstance(final, Finished) and isinstance(event, events.Done) and event.paints_noise:
                    final = replace(final, note=NOISE_NOTE)
                assert not isinstance(final, Progress)
                if not await self._claim_final(event.job_id):
                    continue  # the process following the job (or another catching up) posts it
                yield Orphan(card_of(view), channel_id, message_id, final)
            finally:
                await events.ack(self.redis, EVENT_GROUP, delivery.entry_id)

    async def job_for_message(self, channel_id: str, message_id: str) -> str | None:
        view = await self.service.find_job_by_message("discord", channel_id, message_id)
        return view.job_id if view is not None else None

    # -- reactions and lookups -----------------------------------------------------------------------------------

    async def details(self, who: Requester, job_id: str) -> Details:
        view = await _refusing(self.service.job(job_id))
        singles = [self.store.get(i.key) for i in sorted(view.images, key=lambda i: i.index) if i.index > 0]
        return Details(format_details(view), tuple(singles))

    async def cancel_or_delete(self, who: Requester, job_id: str) -> Literal["cancelled", "deleted"]:
        status = await _refusing(self.service.cancel(who, job_id))
        if status == "cancelled":
            # A queued job is cancelled at once, but its final event would wait until a worker dequeues it:
            # announce it now (at most once per job) so every message showing it says "Stopped" right away.
            await events.publish_final(self.redis, events.Cancelled(job_id=job_id, refunded=True))
        # A finished job has nothing to stop: ❌ removes its message (the service checked ownership either way).
        return "deleted" if status in ("done", "failed") else "cancelled"

    async def show(self, who: Requester, job_id: str) -> tuple[JobCard, Finished]:
        view = await _refusing(self.service.show(who, job_id))
        if view.status != "done":
            raise UserFacingError(f"job {job_id} is {view.status}; /show works on finished jobs")
        return card_of(view, kind="grid" if view.is_grid else "single"), self._finished(view)

    # -- text commands and settings ------------------------------------------------------------------------------

    async def command(self, who: Requester, name: str, argument: str = "") -> str:
        handler: Callable[[Requester, str], Awaitable[str]] | None = getattr(self, f"_cmd_{name}", None)
        if handler is None:
            raise UserFacingError(f"unknown command {name!r}")
        return await _refusing(handler(who, argument))

    async def _cmd_info(self, who: Requester, _: str) -> str:
        return format_info(await self.service.info(who))

    async def _cmd_history(self, who: Requester, search: str) -> str:
        views = await self.service.history(who, search or None)
        if not views:
            return "No jobs yet: try `/imagine`."
        return "\n".join(f"`{v.job_id}` **{texts.shown_prompt(v.display)[:150]}** ({v.status})" for v in views)

    async def _cmd_fast(self, who: Requester, _: str) -> str:
        await self.service.update_settings(who, mode="fast")
        return MODE_REPLIES["fast"]

    async def _cmd_relax(self, who: Requester, _: str) -> str:
        await self.service.update_settings(who, mode="relax")
        return MODE_REPLIES["relax"]

    async def _cmd_turbo(self, who: Requester, _: str) -> str:
        await self.service.update_settings(who, mode="turbo")
        return MODE_REPLIES["turbo"]

    async def _cmd_public(self, who: Requester, _: str) -> str:
        await self.service.update_settings(who, visibility="public")
        return "Public mode on: your new jobs show in the gallery."

    async def _cmd_stealth(self, who: Requester, _: str) -> str:
        await self.service.update_settings(who, visibility="stealth")
        return "Stealth mode on: your new jobs stay out of the gallery."

    async def _cmd_prefer_suffix(self, who: Requester, text: str) -> str:
        suffix = await self.service.prefer_suffix(who, text)
        return f"Suffix set to `{texts.escape(suffix)}`" if suffix else "Suffix cleared."

    async def _cmd_prefer_remix(self, who: Requester, _: str) -> str:
        current = await self.service.settings(who)
        await self.service.update_settings(who, remix=not current.remix)
        return "Remix mode turned off." if current.remix else "Remix mode turned on."

    async def _cmd_prefer_option_set(self, who: Requester, text: str) -> str:
        name, _, value = text.partition(" ")
        options = await self.service.prefer_option_set(who, name, value)
        bare = name.removeprefix("--").lower()
        if bare in options:
            return f"Custom option `--{texts.escape(bare)}` set to `{texts.escape(options[bare])}`"
        return f"Custom option `--{texts.escape(bare)}` deleted."

    async def _cmd_prefer_option_list(self, who: Requester, _: str) -> str:
        options = await self.service.prefer_option_list(who)
        if not options:
            return "No custom options yet: `/prefer option set name value`."
        return "\n".join(f"`--{texts.escape(k)}`: `{texts.escape(v)}`" for k, v in options.items())

    # /server: the adapter checked Manage Server; the service stores the rules and applies them to every request.

    def _guild_id(self, who: Requester) -> str:
        if who.guild_id is None:
            raise UserFacingError("/server works in a server, not in DMs")
        return who.guild_id

    async def _cmd_server_show(self, who: Requester, _: str) -> str:
        guild = await self.service.guild("discord", self._guild_id(who))
        channels = ", ".join(f"<#{int(c)}>" for c in guild.allowed_channels) or "every channel"
        roles = ", ".join(f"<@&{int(r)}> → {texts.escape(p)}" for r, p in guild.role_plans.items()) or "none"
        plans = ", ".join(sorted(self.service.plans.plans))
        return f"**Channels**: {channels}\n**Role plans**: {roles}\n**Plans**: {plans}"

    async def _cmd_server_allow(self, who: Requester, channel_id: str) -> str:
        guild_id = self._guild_id(who)
        current = list((await self.service.guild("discord", guild_id)).allowed_channels)
        allowed = [c for c in current if c != channel_id] if channel_id in current else [*current, channel_id]
        await self.service.configure_guild("discord", guild_id, allowed_channels=allowed)
        return await self._cmd_server_show(who, "")

    async def _cmd_server_allow_all(self, who: Requester, _: str) -> str:
        await self.service.configure_guild("discord", self._guild_id(who), allowed_channels=[])
        return await self._cmd_server_show(who, "")

    async def _cmd_server_plan(self, who: Requester, text: str) -> str:
        role_id, _, plan = text.partition(" ")
        guild_id = self._guild_id(who)
        plans = dict((await self.service.guild("discord", guild_id)).role_plans)
        if plan:
            plans[role_id] = plan
        else:
            plans.pop(role_id, None)
        await self.service.configure_guild("discord", guild_id, role_plans=plans)
        return await self._cmd_server_show(who, "")

    def _panel(self, view: SettingsView) -> SettingsPanel:
        return SettingsPanel(
            model=view.model or (self.models[0] if self.models else ""),
            models=self.models,
            mode=view.mode,
            public=view.visibility == "public",
            remix=view.remix,
            raw=view.raw,
            stylize=view.stylize,
            suffix=view.settings_text,
        )

    async def settings(self, who: Requester) -> SettingsPanel:
        return self._panel(await _refusing(self.service.settings(who)))

    async def update_setting(self, who: Requester, key: str, value: str | None) -> SettingsPanel:
        current = await _refusing(self.service.settings(who))
        update = self.service.update_settings
        if key == "raw":
            view = await _refusing(update(who, raw=not current.raw))
        elif key == "public":
            view = await _refusing(update(who, visibility="stealth" if current.visibility == "public" else "public"))
        elif key == "remix":
            view = await _refusing(update(who, remix=not current.remix))
        elif key == "mode" and value:
            view = await _refusing(update(who, mode=value))
        elif key == "model" and value:
            view = await _refusing(update(who, model=value))
        elif key == "stylize" and value and value.isdigit():
            chosen = int(value)
            if current.stylize == chosen:
                view = await _refusing(update(who, clear_stylize=True))
            else:
                view = await _refusing(update(who, stylize=chosen))
        elif key == "reset":
            view = await _refusing(update(who, reset=True))
        else:
            raise UserFacingError(f"unknown setting {key!r}")
        return self._panel(view)
