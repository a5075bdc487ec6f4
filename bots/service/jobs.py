"""The job service: what every front door calls to make, press, cancel and look up jobs.

One ``JobService`` is built in ``main()`` from the session factory, the image store, the model registry, the plans
and an ``enqueue`` callable, and shared by every handler. Each method is one or two short transactions that the
service owns (``async with session.begin():``); storage functions never commit.

Admission (DESIGN.md "A job's life", step 3) is atomic per user: the user's row is locked (``SELECT … FOR UPDATE`` on
PostgreSQL; every SQLite transaction is a ``BEGIN IMMEDIATE`` writer), then the idempotency key, the queue limit and
the balance are checked and the reservation written in the same transaction as the job rows. So 50 concurrent
requests never spend past the balance, and a double click (the same interaction or callback id) makes one job.
The queue is told only after the commit; a repeated request re-announces its still-queued jobs, which the queue
ignores for a job id it already holds (arq ``_job_id``), so a crash between commit and enqueue heals on retry.
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

from sqlalchemy import Select, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from impasto.bots.language.job import Job as ParsedJob
from impasto.bots.language.parser import parse_blend, parse_imagine, parse_remix
from impasto.bots.language.prefs import MAX_OPTIONS, Preferences, validate_option, validate_suffix
from impasto.bots.service.errors import (
    ChannelNotAllowed,
    CreditsExhausted,
    DailyCapReached,
    InvalidRequest,
    JobNotFound,
    JobNotReady,
    NotYourJob,
    QueueFull,
    QueueUnavailable,
    RelaxNotAllowed,
)
from impasto.bots.service.fetch import FetchError, FetchImage, image_extension
from impasto.bots.service.jobjson import job_from_json
from impasto.bots.service.requester import Requester
from impasto.bots.service.views import (
    Enqueue,
    GuildView,
    ImageView,
    InfoView,
    JobTicket,
    JobView,
    MessageView,
    PressResult,
    QueuedRender,
    SettingsView,
    Variation,
)
from impasto.engine.registry import Registry, RegistryError
from impasto.queue.actions import Action
from impasto.storage import ledger
from impasto.storage.images import KEY_PATTERN, ImageStore
from impasto.storage.lifecycle import Released, fail_job, lock_user, release_held, request_cancel, user_of
from impasto.storage.models import (
    ACTIVE_STATUSES,
    CANCELLED,
    DONE,
    QUEUED,
    RUNNING,
    Guild,
    Image,
    Job,
    Message,
    Preference,
    Usage,
    User,
    utcnow,
)
from impasto.storage.plans import Plan, Plans

log = logging.getLogger(__name__)

MAX_SEED = 2**32 - 1
DEFAULT_STEPS = 30
STYLIZE_PRESETS = (50, 100, 250, 750)
HELD_NOTICE = (
    "Job queued: you have reached the maximum allowed number of concurrent jobs; "
    "this job will start as soon as another one finishes"
)
MODES = ("fast", "relax", "turbo")
VISIBILITIES = ("public", "stealth")


@dataclass(frozen=True)
class _Context:
    """Who is asking, resolved against SQL: ids, plan, and the preferences the parser needs."""

    user_id: int
    user_key: str
    guild_id: int | None
    guild_key: str | None
    channel_id: str | None
    daily_cap_gpu_seconds: float | None
    allowed_channels: tuple[str, ...]
    plan: Plan
    prefs: Preference

    @property
    def preferences(self) -> Preferences:
        return Preferences(
            suffix=self.prefs.suffix, options=dict(self.prefs.options), settings=_settings_text(self.prefs)
        )


@dataclass
class _Draft:
    """A job row about to be written."""

    action: str
    prompt: str
    params: dict[str, Any]
    seed: int
    model: str
    mode: str
    visibility: str
    display: str
    estimate_gpu_seconds: float  # before the mode's multiplier
    parent_id: str | None = None
    image_index: int | None = None
    input_image_keys: list[str] = field(default_factory=list)
    # A free pick (U1–U4): the job is born done with these images and never queued.
    done_images: list[ImageView] = field(default_factory=list)


class JobService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        images: ImageStore,
        registry: Registry,
        plans: Plans,
        enqueue: Enqueue,
        *,
        fetch_image: FetchImage | None = None,
        rng: random.Random | None = None,
    ) -> None:
        """``fetch_image`` downloads image prompt links into the store (``fetch.http_fetcher`` in production);
        without it, links are kept as they are and only store keys given by the bot reach the worker."""
        self.fetch_image = fetch_image
        self.sessions = sessions
        self.images = images
        self.registry = registry
        self.plans = plans
        self.enqueue = enqueue
        self._rng = rng or random.SystemRandom()

    # ----------------------------------------------------------------------------------------------- making jobs

    async def imagine(
        self,
        who: Requester,
        text: str,
        *,
        image_urls: Sequence[str] = (),
        idempotency_key: str,
    ) -> list[JobTicket]:
        """``/imagine``: parse, admit (quota, limits) and queue one job per permutation × repeat.

        ``image_urls`` (attachments) go in front of the text as image prompts. Raises PromptError for a bad prompt,
        QueueFull / CreditsExhausted / DailyCapReached / RelaxNotAllowed / ChannelNotAllowed when refused (nothing is
        charged then). The same ``idempotency_key`` again returns the first call's tickets with ``duplicate=True``.
        """
        idempotency_key = _request_key(idempotency_key)
        existing = await self._replay(idempotency_key)
        if existing is not None:
            return existing
        ctx = await self._context(who)
        self._check_channel(ctx, who)
        full_text = " ".join([*image_urls, text]).strip()
        parsed = parse_imagine(
            full_text, registry=self.registry, preferences=ctx.preferences, max_permutations=ctx.plan.max_permutations
        )
        drafts = [self._draft_from_parsed(job, action="imagine", prompt=text) for job in parsed]
        if len(drafts) > 1 and any(draft.mode == "relax" for draft in drafts):
            # Midjourney's rule: many jobs from one prompt would crowd the free lane.
            raise InvalidRequest(
                f"permutations and --repeat run only in fast or turbo mode, and this prompt makes {len(drafts)} "
                "relax jobs; add --fast (or switch with /fast), or send them one at a time"
            )
        stored = await self._store_links([url for job in parsed for url in job.image_prompts])
        for draft in drafts:
            _use_keys(draft, stored)
        return await self._submit(ctx, drafts, idempotency_key)

    async def blend(
        self,
        who: Requester,
        image_urls: Sequence[str],
        dimensions: str | None = None,
        *,
        idempotency_key: str,
        image_keys: Sequence[str] = (),
    ) -> list[JobTicket]:
        """``/blend``: 2–5 image links, ``portrait``/``square``/``landscape``; one job.

        ``image_keys``: the same images already put in the ImageStore by the bot (optional); the worker loads them
        instead of downloading the links.
        """
        idempotency_key = _request_key(idempotency_key)
        existing = await self._replay(idempotency_key)
        if existing is not None:
            return existing
        ctx = await self._context(who)
        self._check_channel(ctx, who)
        parsed = parse_blend(image_urls, dimensions, registry=self.registry, preferences=ctx.preferences)
        keys = [self._checked_key(key) for key in image_keys]
        if keys and len(keys) != len(image_urls):
            raise InvalidRequest(f"/blend got {len(image_urls)} images but {len(keys)} stored copies")
        draft = self._draft_from_parsed(parsed, action="blend", prompt=" ".join(image_urls))
        if keys:
            stored = dict(zip(parsed.image_prompts, keys, strict=True))
        else:
            stored = await self._store_links(list(parsed.image_prompts))
        _use_keys(draft, stored)
        draft.input_image_keys = [str(k) for k in draft.params["image_prompts"]] if stored else []
        return await self._submit(ctx, [draft], idempotency_key)

    async def press(
        self,
        who: Requester,
        job_id: str,
        action: Action,
        index: int | None = None,
        *,
        idempotency_key: str,
        remix_text: str | None = None,
        mask_key: str | None = None,
    ) -> PressResult:
        """A button under a job. The presser owns (and pays for) what it makes.

        U1–U4 → a finished single-image job holding the chosen picture (free, nothing rendered); ❤️ → toggles the
        favourite flag (owner only); details → the job itself; every other action queues a child job whose lineage
        (parent, action, index) is stored. With Remix on (or Custom Zoom) and no ``remix_text``, the result is
        ``kind="remix"``: ask for the edited prompt, then press again with it. Vary (Region) needs ``mask_key``:
        a store key of the mask image (white = repaint), which the worker reads after the source image.
        """
        idempotency_key = _request_key(idempotency_key)
        parent = await self.job(job_id)
        if action is Action.DETAILS:
            return PressResult("details", parent)
        if action is Action.FAVORITE:
            return PressResult("favorite", await self._toggle_favorite(who, parent))
        if parent.status != DONE:
            raise JobNotReady(f"job {parent.job_id} is {parent.status}; its buttons work once it is done")
        ctx = await self._context(who)
        input_key, index = self._input_image(parent, action, index)
        if action is Action.UPSCALE:
            return await self._pick(ctx, parent, index, input_key, idempotency_key)
        needs_text = action is Action.ZOOM_CUSTOM or (ctx.prefs.remix and action.remixable)
        if remix_text is None and needs_text:
            existing = await self._replay(idempotency_key)
            if existing is None:
                return PressResult("remix", parent)
        draft = self._draft_child(ctx, parent, action, index, input_key, remix_text)
        if remix_text is not None:
            links = [str(u) for u in draft.params.get("image_prompts", ()) if not KEY_PATTERN.match(str(u))]
            _use_keys(draft, await self._store_links(links))
        if action is Action.VARY_REGION:
            if mask_key is None:
                raise InvalidRequest("Vary (Region) needs the area to repaint: select it, then submit")
            draft.input_image_keys.append(self._checked_key(mask_key))
        tickets = await self._submit(ctx, [draft], idempotency_key)
        return PressResult("job", await self.job(tickets[0].job_id), tickets[0])

    async def cancel(self, who: Requester, job_id: str) -> str:
        """❌ / cancel: a queued job is cancelled and refunded now; a running one is flagged and the worker stops it
        between steps (then refunds). Owner only. Returns the status after the request."""
        view = await self._own(who, job_id)
        if view.status not in ACTIVE_STATUSES:
            return view.status
        async with self.sessions() as session, session.begin():
            status = await request_cancel(session, job_id)
        if status == CANCELLED:
            # A queued job left the user's in-flight count (a held one never entered it): let a held one go.
            async with self.sessions() as session, session.begin():
                owner = await user_of(session, job_id)
                released = await release_held(session, owner) if owner is not None else []
            await self._announce(released)
        return status or view.status

    # --------------------------------------------------------------------------------------------------- reading

    async def job(self, job_id: str) -> JobView:
        """Any job by id, with its images and parameters (buttons on any message resolve through this)."""
        async with self.sessions() as session:
            views = await self._views(session, select(Job).where(Job.id == job_id))
        if not views:
            raise JobNotFound(f"no job {job_id!r}; job ids are the 12 characters shown under each result")
        return views[0]

    async def show(self, who: Requester, job_id: str) -> JobView:
        """``/show JOB_ID``: re-post one of your own jobs with its buttons."""
        return await self._own(who, job_id)

    async def history(self, who: Requester, search: str | None = None, limit: int = 10) -> list[JobView]:
        """Your jobs, newest first; ``search`` matches the prompt text, case-insensitively."""
        limit = max(1, min(limit, 100))
        async with self.sessions() as session:
            user_id = await self._user_id(session, who)
            if user_id is None:
                return []
            query = select(Job).where(Job.user_id == user_id)
            if search:
                pattern = "%" + search.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
                query = query.where(
                    or_(
                        func.lower(Job.prompt).like(pattern, escape="\\"),
                        func.lower(Job.display).like(pattern, escape="\\"),
                    )
                )
            return await self._views(session, query.order_by(Job.queued_at.desc(), Job.id).limit(limit))

    async def info(self, who: Requester) -> InfoView:
        """``/info``: plan, mode, fast time left this month, lifetime and relaxed usage, queued and running jobs."""
        ctx = await self._context(who)
        now = utcnow()
        period = ledger.month_period(now)
        async with self.sessions() as session:
            user = await session.get(User, ctx.user_id)
            assert user is not None
            usage = (
                await session.execute(
                    select(Usage.used_gpu_seconds, Usage.reserved_gpu_seconds).where(
                        Usage.user_id == ctx.user_id, Usage.period == period
                    )
                )
            ).one_or_none()
            rows = await session.execute(
                select(Job.id, Job.status, Job.mode)
                .where(Job.user_id == ctx.user_id, Job.status.in_(ACTIVE_STATUSES))
                .order_by(Job.queued_at)
            )
            queued: dict[str, int] = dict.fromkeys(MODES, 0)
            running: list[str] = []
            for job_id, status, mode in rows:
                if status == RUNNING:
                    running.append(job_id)
                else:
                    queued[mode] = queued.get(mode, 0) + 1
        used, reserved = (usage[0], usage[1]) if usage is not None else (0.0, 0.0)
        return InfoView(
            platform=who.platform,
            user_id=who.user_id,
            plan=ctx.plan.name,
            mode=ctx.prefs.mode,
            visibility=ctx.prefs.visibility,
            remix=ctx.prefs.remix,
            fast_gpu_seconds_limit=ctx.plan.fast_gpu_seconds,
            fast_gpu_seconds_used=used,
            fast_gpu_seconds_reserved=reserved,
            renews_on=_next_month(now),
            lifetime_images=user.lifetime_images,
            lifetime_gpu_seconds=user.lifetime_gpu_seconds,
            relaxed_images=user.relaxed_images,
            relaxed_gpu_seconds=user.relaxed_gpu_seconds,
            queued_jobs=queued,
            running_jobs=tuple(running),
        )

    # -------------------------------------------------------------------------------------- settings and /prefer

    async def settings(self, who: Requester) -> SettingsView:
        """The /settings panel's current state."""
        ctx = await self._context(who)
        return _settings_view(ctx.prefs)

    async def update_settings(
        self,
        who: Requester,
        *,
        mode: str | None = None,
        visibility: str | None = None,
        remix: bool | None = None,
        raw: bool | None = None,
        stylize: int | None = None,
        clear_stylize: bool = False,
        model: str | None = None,
        clear_model: bool = False,
        variation: Variation | None = None,
        reset: bool = False,
    ) -> SettingsView:
        """Change /settings (and /fast, /relax, /turbo, /stealth, /public, /prefer remix). Only given fields change;
        ``reset`` restores every default first. Relax is refused on plans without it."""
        ctx = await self._context(who)
        if mode is not None and mode not in MODES:
            raise InvalidRequest(f"mode {mode!r} is not one of {', '.join(MODES)}")
        if mode == "relax" and not ctx.plan.relax:
            raise self._relax_refusal(ctx.plan)
        if visibility is not None and visibility not in VISIBILITIES:
            raise InvalidRequest(f"visibility {visibility!r} is not one of {', '.join(VISIBILITIES)}")
        if stylize is not None and not 0 <= stylize <= 1000:
            raise InvalidRequest(f"stylize {stylize} is out of range; allowed 0–1000 (presets 50, 100, 250, 750)")
        if variation is not None and variation not in ("high", "low"):
            raise InvalidRequest(f"variation {variation!r} is not one of high, low")
        if model is not None:
            _model_parameter(self.registry, model)
        async with self.sessions() as session, session.begin():
            prefs = await self._prefs_for_update(session, ctx.user_id)
            if reset:
                prefs.mode, prefs.visibility, prefs.remix = "fast", "public", False
                prefs.raw, prefs.stylize, prefs.model, prefs.variation = False, None, None, "high"
            for name, value in (
                ("mode", mode),
                ("visibility", visibility),
                ("remix", remix),
                ("raw", raw),
                ("stylize", stylize),
                ("model", model),
                ("variation", variation),
            ):
                if value is not None:
                    setattr(prefs, name, value)
            if clear_stylize:
                prefs.stylize = None
            if clear_model:
                prefs.model = None
            return _settings_view(prefs)

    async def prefer_suffix(self, who: Requester, text: str) -> str:
        """``/prefer suffix``: parameters added to every prompt; empty resets. Returns the stored suffix."""
        suffix = validate_suffix(text)
        ctx = await self._context(who)
        # Parse a probe prompt so a bad --v / --niji name in the suffix is refused now, not at the next /imagine.
        parse_imagine("probe", registry=self.registry, preferences=replace(ctx.preferences, suffix=suffix))
        async with self.sessions() as session, session.begin():
            prefs = await self._prefs_for_update(session, ctx.user_id)
            prefs.suffix = suffix
        return suffix

    async def prefer_option_set(self, who: Requester, name: str, value: str) -> dict[str, str]:
        """``/prefer option set NAME VALUE``: a personal ``--NAME`` that expands to VALUE; empty VALUE deletes it.
        Returns every option after the change."""
        validate_option(name, value)
        bare = (name[2:] if name.startswith("--") else name).lower()
        ctx = await self._context(who)
        async with self.sessions() as session, session.begin():
            prefs = await self._prefs_for_update(session, ctx.user_id)
            options = dict(prefs.options)
            cleaned = " ".join(value.split())
            if cleaned:
                if bare not in options and len(options) >= MAX_OPTIONS:
                    raise InvalidRequest(f"you have {len(options)} custom options; at most {MAX_OPTIONS} allowed")
                options[bare] = cleaned
            else:
                options.pop(bare, None)
            prefs.options = options
            return dict(sorted(options.items()))

    async def prefer_option_list(self, who: Requester) -> dict[str, str]:
        """``/prefer option list``: your custom options, by name."""
        ctx = await self._context(who)
        return {str(k): str(v) for k, v in sorted(ctx.prefs.options.items())}

    # --------------------------------------------------------------------------------------------- messages

    async def record_message(self, job_id: str, platform: str, chat_id: str, message_id: str, kind: str) -> None:
        """Remember that a platform message shows ``job_id``; recording the same message again moves it."""
        values: dict[str, Any] = {
            "job_id": job_id,
            "platform": platform,
            "chat_id": chat_id,
            "message_id": message_id,
            "kind": kind,
        }
        async with self.sessions() as session, session.begin():
            if await session.get(Job, job_id) is None:
                raise JobNotFound(f"no job {job_id!r}")
            if _dialect(session) == "postgresql":
                pg = postgresql.insert(Message).values(**values)
                await session.execute(
                    pg.on_conflict_do_update(constraint="uq_messages_platform", set_={"job_id": job_id, "kind": kind})
                )
            else:
                lite = sqlite.insert(Message).values(**values)
                await session.execute(
                    lite.on_conflict_do_update(
                        index_elements=["platform", "chat_id", "message_id"], set_={"job_id": job_id, "kind": kind}
                    )
                )

    async def find_job_by_message(self, platform: str, chat_id: str, message_id: str) -> JobView | None:
        """The job a platform message shows, or None."""
        async with self.sessions() as session:
            job_id = await session.scalar(
                select(Message.job_id).where(
                    Message.platform == platform, Message.chat_id == chat_id, Message.message_id == message_id
                )
            )
            if job_id is None:
                return None
            views = await self._views(session, select(Job).where(Job.id == job_id))
            return views[0] if views else None

    async def messages(self, job_id: str) -> list[MessageView]:
        """Every platform message recorded for a job, oldest first (e.g. the progress message to edit)."""
        async with self.sessions() as session:
            rows = await session.scalars(select(Message).where(Message.job_id == job_id).order_by(Message.id))
            return [MessageView(m.platform, m.chat_id, m.message_id, m.kind, m.created_at) for m in rows]

    # ------------------------------------------------------------------------------------------------- guilds

    async def guild(self, platform: str, guild_id: str) -> GuildView:
        async with self.sessions() as session, session.begin():
            row = await self._guild(session, platform, guild_id)
            return _guild_view(row)

    async def configure_guild(
        self,
        platform: str,
        guild_id: str,
        *,
        allowed_channels: Sequence[str] | None = None,
        role_plans: Mapping[str, str] | None = None,
        daily_cap_gpu_seconds: float | None = None,
        clear_daily_cap: bool = False,
    ) -> GuildView:
        """A server's rules: where commands work, which roles get which plan, a daily fast-time cap per member.
        The adapter checks that the caller is a server admin."""
        if role_plans is not None:
            for role, plan in role_plans.items():
                if plan not in self.plans.plans:
                    raise InvalidRequest(
                        f"role {role!r} maps to unknown plan {plan!r}; plans: {', '.join(sorted(self.plans.plans))}"
                    )
        if daily_cap_gpu_seconds is not None and daily_cap_gpu_seconds < 0:
            raise InvalidRequest(f"the daily cap must be >= 0 GPU-seconds, not {daily_cap_gpu_seconds}")
        async with self.sessions() as session, session.begin():
            row = await self._guild(session, platform, guild_id)
            if allowed_channels is not None:
                row.allowed_channels = [str(c) for c in allowed_channels]
            if role_plans is not None:
                row.role_plans = {str(k): str(v) for k, v in role_plans.items()}
            if daily_cap_gpu_seconds is not None:
                row.daily_cap_gpu_seconds = float(daily_cap_gpu_seconds)
            if clear_daily_cap:
                row.daily_cap_gpu_seconds = None
            return _guild_view(row)

    # ------------------------------------------------------------------------------------------------ internals

    def _draft_from_parsed(self, job: ParsedJob, *, action: str, prompt: str) -> _Draft:
        seed = job.seed if job.seed is not None else self._new_seed()
        params = job.to_json()
        params["seed"] = seed
        return _Draft(
            action=action,
            prompt=prompt,
            params=params,
            seed=seed,
            model=job.model,
            mode=job.mode,
            visibility=job.visibility,
            display=job.display,
            estimate_gpu_seconds=self._estimate(job.model, job.width, job.height, job.quality, images=4),
        )

    def _draft_child(
        self,
        ctx: _Context,
        parent: JobView,
        action: Action,
        index: int | None,
        input_key: str | None,
        remix_text: str | None,
    ) -> _Draft:
        original = job_from_json(parent.params)
        mode: str
        if remix_text is not None:
            edited = parse_remix(original, remix_text, registry=self.registry, preferences=ctx.preferences)
            mode = edited.mode
        else:
            # A button uses the presser's current mode (as Midjourney does), not the one the parent ran in.
            edited, mode = original, ctx.prefs.mode
        seed = self._new_seed() if action.new_seed else (edited.seed if edited.seed is not None else parent.seed)
        params = edited.to_json()
        params["seed"] = seed
        params["mode"] = mode
        if action.row.strength is not None or action.row.needs_mask:
            params["variation"] = ctx.prefs.variation  # high/low variation mode, for V1–V4 and Vary
        width, height, images = edited.width, edited.height, 4
        if action.row.output == "single":
            scale = action.row.scale
            width, height, images = width * scale, height * scale, 1
        return _Draft(
            action=action.value,
            prompt=remix_text if remix_text is not None else parent.prompt,
            params=params,
            seed=seed,
            model=edited.model,
            mode=mode,
            visibility=edited.visibility,
            display=edited.display,
            estimate_gpu_seconds=self._estimate(edited.model, width, height, edited.quality, images=images),
            parent_id=parent.job_id,
            image_index=index,
            input_image_keys=[input_key] if input_key else [],
        )

    def _input_image(self, parent: JobView, action: Action, index: int | None) -> tuple[str | None, int | None]:
        """The parent image an action starts from, and the index it is stored under."""
        singles = sorted(image.index for image in parent.images if image.index >= 1)
        if action is Action.REROLL:
            return None, None
        if action.needs_index or (index is not None and parent.is_grid):
            if index is None or parent.image(index) is None or index < 1:
                allowed = f"{singles[0]}–{singles[-1]}" if singles else "none"
                raise InvalidRequest(f"image {index} does not exist in job {parent.job_id}; images: {allowed}")
            image = parent.image(index)
            assert image is not None
            return image.key, index
        single = parent.image(1) if len(singles) == 1 or not parent.is_grid else None
        if single is None:
            raise InvalidRequest(f"job {parent.job_id} is a grid; pick an image first (U1–U4)")
        return single.key, None

    async def _pick(
        self, ctx: _Context, parent: JobView, index: int | None, key: str | None, idempotency_key: str
    ) -> PressResult:
        """U1–U4: a free, finished job that holds the chosen grid image; the same pick twice returns the first."""
        assert key is not None
        assert index is not None
        image = parent.image(index)
        assert image is not None
        async with self.sessions() as session:
            earlier = await session.scalar(
                select(Job.id)
                .where(
                    Job.parent_id == parent.job_id,
                    Job.action == Action.UPSCALE.value,
                    Job.image_index == index,
                    Job.user_id == ctx.user_id,
                    Job.status == DONE,
                )
                .order_by(Job.queued_at)
                .limit(1)
            )
        if earlier is not None:
            return PressResult("image", await self.job(earlier))
        draft = _Draft(
            action=Action.UPSCALE.value,
            prompt=parent.prompt,
            params=dict(parent.params),
            seed=parent.seed,
            model=parent.model,
            mode=parent.mode,
            visibility=parent.visibility,
            display=parent.display,
            estimate_gpu_seconds=0.0,
            parent_id=parent.job_id,
            image_index=index,
            input_image_keys=[key],
            done_images=[replace(image, index=1)],
        )
        tickets = await self._submit(ctx, [draft], idempotency_key)
        return PressResult("image", await self.job(tickets[0].job_id))

    async def _submit(self, ctx: _Context, drafts: list[_Draft], idempotency_key: str) -> list[JobTicket]:
        for draft in drafts:
            if draft.mode == "relax" and not ctx.plan.relax and not draft.done_images:
                raise self._relax_refusal(ctx.plan)
        try:
            tickets, released = await self._admit(ctx, drafts, idempotency_key)
        except IntegrityError:
            # Another request with this key won the race on the unique index: answer with its jobs.
            replay = await self._replay(idempotency_key)
            if replay is None:
                raise
            return replay
        await self._announce(released, failing=tickets)
        return tickets

    async def _admit(
        self, ctx: _Context, drafts: list[_Draft], idempotency_key: str
    ) -> tuple[list[JobTicket], list[Released]]:
        now = utcnow()
        month = ledger.month_period(now)
        async with self.sessions() as session, session.begin():
            # The per-user lock: every admission and release for this user queues here.
            await lock_user(session, ctx.user_id)
            existing = await self._tickets_for_key(session, idempotency_key)
            if existing:
                return existing, []
            renders = [d for d in drafts if not d.done_images]
            active = 0
            day: str | None = None
            if renders:
                active = int(
                    await session.scalar(
                        select(func.count())
                        .select_from(Job)
                        .where(Job.user_id == ctx.user_id, Job.status.in_(ACTIVE_STATUSES))
                    )
                    or 0
                )
                plan = ctx.plan
                room = plan.max_concurrent_jobs + plan.max_queued_jobs - active
                if len(renders) > room:
                    raise QueueFull(
                        f"your job queue is full ({active} jobs waiting or running, {plan.name} plan allows "
                        f"{plan.max_concurrent_jobs} running + {plan.max_queued_jobs} queued); "
                        "wait for a job to finish, then resubmit"
                        + (f" (this prompt makes {len(renders)} jobs)" if len(renders) > 1 else "")
                    )
                cost = sum(d.estimate_gpu_seconds * self.plans.costs.multiplier(d.mode) for d in renders)
                if cost > 0:
                    if not await ledger.try_reserve(session, ctx.user_id, month, cost, plan.fast_gpu_seconds):
                        raise await self._credits_refusal(session, ctx, month, cost)
                    if ctx.daily_cap_gpu_seconds is not None and ctx.guild_key is not None:
                        day = ledger.day_period(now, ctx.guild_key)
                        if not await ledger.try_reserve(session, ctx.user_id, day, cost, ctx.daily_cap_gpu_seconds):
                            raise DailyCapReached(
                                f"this server allows {ctx.daily_cap_gpu_seconds / 60:.1f} fast GPU-minutes per member "
                                "per day and this job would pass it; try tomorrow, or use /relax"
                            )
            rows: list[Job] = []
            for n, draft in enumerate(drafts):
                multiplier = 0.0 if draft.done_images else self.plans.costs.multiplier(draft.mode)
                reserved = draft.estimate_gpu_seconds * multiplier
                row = Job(
                    user_id=ctx.user_id,
                    guild_id=ctx.guild_id,
                    channel_id=ctx.channel_id,
                    parent_id=draft.parent_id,
                    action=draft.action,
                    image_index=draft.image_index,
                    prompt=draft.prompt,
                    display=draft.display,
                    params=draft.params,
                    input_image_keys=draft.input_image_keys,
                    seed=draft.seed,
                    model=draft.model,
                    mode=draft.mode,
                    visibility=draft.visibility,
                    status=DONE if draft.done_images else QUEUED,
                    idempotency_key=f"{idempotency_key}/{n}",
                    request_key=idempotency_key,
                    queued_at=now,
                    started_at=now if draft.done_images else None,
                    finished_at=now if draft.done_images else None,
                    released_at=now if draft.done_images else None,
                    reserved_gpu_seconds=reserved,
                    cost_multiplier=multiplier,
                    max_concurrent=ctx.plan.max_concurrent_jobs,
                    month_period=month,
                    day_period=day if reserved > 0 else None,
                )
                session.add(row)
                rows.append(row)
            await session.flush()
            for row, draft in zip(rows, drafts, strict=True):
                for image in draft.done_images:
                    session.add(
                        Image(
                            job_id=row.id,
                            index=image.index,
                            store_key=image.key,
                            width_px=image.width_px,
                            height_px=image.height_px,
                        )
                    )
                if row.reserved_gpu_seconds > 0:
                    await ledger.record(session, row, "reserve", row.reserved_gpu_seconds, month)
            # Jobs past the plan's concurrency limit stay held in SQL; the rest go to the queue after the commit.
            released = await release_held(session, ctx.user_id, locked=True)
            return [_ticket(row) for row in rows], released

    async def _announce(self, released: list[Released], *, failing: list[JobTicket] | None = None) -> None:
        """Hand released jobs to the queue.

        If that fails, the request's own queued jobs (``failing``) are failed, refunding, and the user is told. Without
        ``failing`` (a replay of an earlier request, a job released by a cancel) a failure is only logged: the jobs
        stay released in SQL and the queue's sweep puts them on the queue once it is reachable again.
        """
        for job in released:
            request = QueuedRender(
                job_id=job.job_id,
                lane=job.mode,  # type: ignore[arg-type]  # modes and lanes share names: fast, relax, turbo
                user_key=job.user_key,
                guild_key=job.guild_key,
                enqueued_at=time.time(),
            )
            try:
                await self.enqueue(request)
            except Exception as exc:
                if failing is None:
                    log.warning("queueing job %s failed (the sweep will retry): %s", job.job_id, exc)
                    continue
                async with self.sessions() as session, session.begin():
                    for other in failing:
                        if other.status == QUEUED:
                            await fail_job(session, other.job_id, error=f"could not be queued: {exc}")
                raise QueueUnavailable(
                    "the job queue is not reachable right now; nothing was charged, try again in a minute"
                ) from exc

    async def _replay(self, idempotency_key: str) -> list[JobTicket] | None:
        """The tickets of an earlier request with this key (re-announcing its released, still-queued jobs), or None."""
        async with self.sessions() as session:
            tickets = await self._tickets_for_key(session, idempotency_key)
            if not tickets:
                return None
            row = (
                await session.execute(
                    select(User.platform, User.platform_user_id, Guild.platform, Guild.platform_guild_id)
                    .join(Job, Job.user_id == User.id)
                    .outerjoin(Guild, Guild.id == Job.guild_id)
                    .where(Job.id == tickets[0].job_id)
                )
            ).one()
        guild_key = f"{row[2]}:{row[3]}" if row[2] is not None else None
        user_key = f"{row[0]}:{row[1]}"
        await self._announce(
            [
                Released(job_id=t.job_id, mode=t.mode, user_key=user_key, guild_key=guild_key)
                for t in tickets
                if t.status == QUEUED and not t.waiting
            ]
        )
        return tickets

    async def _tickets_for_key(self, session: AsyncSession, idempotency_key: str) -> list[JobTicket]:
        rows = await session.scalars(
            select(Job).where(Job.request_key == idempotency_key).order_by(Job.idempotency_key)
        )
        return [_ticket(row, duplicate=True) for row in rows]

    async def _context(self, who: Requester) -> _Context:
        async with self.sessions() as session, session.begin():
            user = await self._user(session, who)
            guild = await self._guild(session, who.platform, who.guild_id) if who.guild_id else None
            prefs = await session.get(Preference, user.id)
            if prefs is None:
                prefs = _default_preferences(user.id)
            if who.platform == "console":
                plan = self.plans.get(self.plans.operator)
            elif guild is not None:
                plan = self.plans.best(str(guild.role_plans[r]) for r in who.roles if r in guild.role_plans)
            else:
                plan = self.plans.get(self.plans.default)
            return _Context(
                user_id=user.id,
                user_key=f"{who.platform}:{who.user_id}",
                guild_id=guild.id if guild is not None else None,
                guild_key=f"{who.platform}:{who.guild_id}" if who.guild_id else None,
                channel_id=who.channel_id,
                daily_cap_gpu_seconds=guild.daily_cap_gpu_seconds if guild is not None else None,
                allowed_channels=tuple(guild.allowed_channels) if guild is not None else (),
                plan=plan,
                prefs=prefs,
            )

    async def _user(self, session: AsyncSession, who: Requester) -> User:
        values: dict[str, Any] = {
            "platform": who.platform,
            "platform_user_id": who.user_id,
            "display_name": who.display_name[:128],
            "created_at": utcnow(),
            "lifetime_images": 0,
            "lifetime_gpu_seconds": 0.0,
            "relaxed_images": 0,
            "relaxed_gpu_seconds": 0.0,
        }
        await _insert_ignore(session, User, values, ["platform", "platform_user_id"], "uq_users_platform")
        user = (
            await session.scalars(
                select(User).where(User.platform == who.platform, User.platform_user_id == who.user_id)
            )
        ).one()
        if who.display_name and user.display_name != who.display_name[:128]:
            user.display_name = who.display_name[:128]
        return user

    async def _user_id(self, session: AsyncSession, who: Requester) -> int | None:
        return await session.scalar(
            select(User.id).where(User.platform == who.platform, User.platform_user_id == who.user_id)
        )

    async def _guild(self, session: AsyncSession, platform: str, guild_id: str) -> Guild:
        values: dict[str, Any] = {
            "platform": platform,
            "platform_guild_id": guild_id,
            "allowed_channels": [],
            "role_plans": {},
            "daily_cap_gpu_seconds": None,
            "created_at": utcnow(),
        }
        await _insert_ignore(session, Guild, values, ["platform", "platform_guild_id"], "uq_guilds_platform")
        return (
            await session.scalars(select(Guild).where(Guild.platform == platform, Guild.platform_guild_id == guild_id))
        ).one()

    async def _prefs_for_update(self, session: AsyncSession, user_id: int) -> Preference:
        prefs = await session.get(Preference, user_id, with_for_update=True)
        if prefs is None:
            prefs = _default_preferences(user_id)
            session.add(prefs)
        return prefs

    async def _own(self, who: Requester, job_id: str) -> JobView:
        view = await self.job(job_id)
        if (view.platform, view.user_id) != (who.platform, who.user_id):
            raise NotYourJob(f"job {job_id} belongs to someone else; you can only use your own job ids")
        return view

    async def _toggle_favorite(self, who: Requester, parent: JobView) -> JobView:
        if (parent.platform, parent.user_id) != (who.platform, who.user_id):
            raise NotYourJob("only the job's owner can mark it as a favourite")
        async with self.sessions() as session, session.begin():
            await session.execute(
                update(Job)
                .where(Job.id == parent.job_id)
                .values(favorite=~Job.favorite)
                .execution_options(synchronize_session=False)
            )
        return await self.job(parent.job_id)

    def _check_channel(self, ctx: _Context, who: Requester) -> None:
        if ctx.allowed_channels and who.channel_id not in ctx.allowed_channels:
            raise ChannelNotAllowed("impasto is not enabled in this channel; ask a server admin where to use it")

    async def _store_links(self, urls: list[str]) -> dict[str, str]:
        """Download each distinct image link into the store; link -> key. Nothing happens without a fetcher."""
        if self.fetch_image is None:
            return {}
        stored: dict[str, str] = {}
        for url in dict.fromkeys(urls):
            if KEY_PATTERN.match(url):
                stored[url] = url
                continue
            try:
                data = await self.fetch_image(url)
                ext = image_extension(data)
            except FetchError as exc:
                raise InvalidRequest(f"the image link {url[:100]} {exc}") from None
            stored[url] = self.images.put(data, ext=ext)
        return stored

    def _checked_key(self, key: str) -> str:
        self.images.path(key)  # raises ImageKeyError for anything that is not a store key
        return key

    def _estimate(self, model: str, width: int, height: int, quality: float, *, images: int) -> float:
        try:
            steps = self.registry.get(model).steps
        except RegistryError:
            steps = DEFAULT_STEPS
        return self.plans.costs.estimate_gpu_seconds(
            width_px=width, height_px=height, steps=max(1, round(steps * quality)), images=images
        )

    def _new_seed(self) -> int:
        return self._rng.randint(0, MAX_SEED)

    def _relax_refusal(self, plan: Plan) -> RelaxNotAllowed:
        with_relax = sorted(p.name for p in self.plans.plans.values() if p.relax)
        return RelaxNotAllowed(
            f"relax mode is not part of the {plan.name} plan"
            + (f"; plans with relax: {', '.join(with_relax)}" if with_relax else "")
        )

    async def _credits_refusal(self, session: AsyncSession, ctx: _Context, month: str, cost: float) -> CreditsExhausted:
        usage = (
            await session.execute(
                select(Usage.used_gpu_seconds, Usage.reserved_gpu_seconds).where(
                    Usage.user_id == ctx.user_id, Usage.period == month
                )
            )
        ).one()
        left = max(0.0, ctx.plan.fast_gpu_seconds - usage[0] - usage[1]) / 3600
        remedy = (
            "switch to relax with /relax (or add --relax) to keep going"
            if ctx.plan.relax
            else f"fast time renews on {_next_month(utcnow()).isoformat()}"
        )
        return CreditsExhausted(
            f"you have {left:.2f} of {ctx.plan.fast_gpu_hours:.1f} fast hours left this month and this needs about "
            f"{cost / 3600:.2f}; {remedy}"
        )

    async def _views(self, session: AsyncSession, query: Select[Job]) -> list[JobView]:
        jobs = list(await session.scalars(query))
        if not jobs:
            return []
        ids = [job.id for job in jobs]
        images: dict[str, list[ImageView]] = {job_id: [] for job_id in ids}
        for image in await session.scalars(select(Image).where(Image.job_id.in_(ids)).order_by(Image.index)):
            images[image.job_id].append(ImageView(image.index, image.store_key, image.width_px, image.height_px))
        owners = {
            row[0]: (row[1], row[2], row[3])
            for row in await session.execute(
                select(User.id, User.platform, User.platform_user_id, User.display_name).where(
                    User.id.in_({job.user_id for job in jobs})
                )
            )
        }
        guild_ids = {job.guild_id for job in jobs if job.guild_id is not None}
        guilds: dict[int, str] = {}
        if guild_ids:
            rows = await session.execute(select(Guild.id, Guild.platform_guild_id).where(Guild.id.in_(guild_ids)))
            guilds = {row[0]: row[1] for row in rows}
        return [_view(job, owners[job.user_id], guilds.get(job.guild_id or -1), tuple(images[job.id])) for job in jobs]


def _ticket(row: Job, *, duplicate: bool = False) -> JobTicket:
    waiting = row.status == QUEUED and row.released_at is None
    return JobTicket(
        job_id=row.id,
        status=row.status,
        mode=row.mode,
        display=row.display,
        seed=row.seed,
        reserved_gpu_seconds=row.reserved_gpu_seconds,
        duplicate=duplicate,
        waiting=waiting,
        notice=HELD_NOTICE if waiting else None,
    )


def _view(job: Job, owner: tuple[str, str, str], guild_id: str | None, images: tuple[ImageView, ...]) -> JobView:
    return JobView(
        job_id=job.id,
        platform=owner[0],
        user_id=owner[1],
        user_name=owner[2],
        guild_id=guild_id,
        channel_id=job.channel_id,
        parent_id=job.parent_id,
        action=job.action,
        image_index=job.image_index,
        prompt=job.prompt,
        display=job.display,
        params=dict(job.params),
        seed=job.seed,
        model=job.model,
        mode=job.mode,
        visibility=job.visibility,
        status=job.status,
        queued_at=job.queued_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        gpu_seconds=job.gpu_seconds,
        charged_gpu_seconds=job.charged_gpu_seconds,
        error=job.error,
        attempts=job.attempts,
        favorite=job.favorite,
        cancel_requested=job.cancel_requested,
        images=images,
    )


def _guild_view(row: Guild) -> GuildView:
    return GuildView(
        platform=row.platform,
        guild_id=row.platform_guild_id,
        allowed_channels=tuple(row.allowed_channels),
        role_plans={str(k): str(v) for k, v in row.role_plans.items()},
        daily_cap_gpu_seconds=row.daily_cap_gpu_seconds,
    )


def _model_parameter(registry: Registry, name: str) -> str:
    """The parameter that selects registry model ``name`` ("v6" → "--v 6", "niji6" → "--niji 6")."""
    try:
        registry.get(name)
    except RegistryError as exc:
        raise InvalidRequest(str(exc)) from None
    if name.startswith("niji"):
        return f"--niji {name[4:]}".rstrip()
    if name.startswith("v") and name[1:2].isdigit():
        return f"--v {name[1:]}"
    raise InvalidRequest(f"model {name!r} has no --v / --niji name; choose one of {', '.join(registry.names())}")


def _settings_text(prefs: Preference) -> str:
    parts: list[str] = []
    if prefs.model and prefs.model.startswith("niji"):
        parts.append(f"--niji {prefs.model[4:]}".rstrip())
    elif prefs.model and prefs.model.startswith("v"):
        parts.append(f"--v {prefs.model[1:]}")
    if prefs.raw:
        parts.append("--style raw")
    if prefs.stylize is not None:
        parts.append(f"--s {prefs.stylize}")
    if prefs.mode and prefs.mode != "fast":
        parts.append(f"--{prefs.mode}")
    if prefs.visibility == "stealth":
        parts.append("--stealth")
    return " ".join(parts)


def _settings_view(prefs: Preference) -> SettingsView:
    variation: Variation = "low" if prefs.variation == "low" else "high"
    return SettingsView(
        mode=prefs.mode,
        visibility=prefs.visibility,
        remix=prefs.remix,
        raw=prefs.raw,
        stylize=prefs.stylize,
        model=prefs.model,
        variation=variation,
        suffix=prefs.suffix,
        settings_text=_settings_text(prefs),
    )


def _use_keys(draft: _Draft, stored: Mapping[str, str]) -> None:
    """Point the job's image prompts at their store copies (the worker reads only the store); keep the links."""
    links = [str(u) for u in draft.params.get("image_prompts", ())]
    if not links or not stored:
        return
    draft.params["image_prompt_urls"] = links
    draft.params["image_prompts"] = [stored.get(u, u) for u in links]


def _request_key(key: str) -> str:
    """Idempotency keys are platform ids (short); a longer one is hashed to fit its column, keeping it unique."""
    if not key:
        raise InvalidRequest("a request needs an idempotency key (the interaction or callback id)")
    return key if len(key) <= 120 else "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def _next_month(now: datetime) -> date:
    year, month = (now.year + 1, 1) if now.month == 12 else (now.year, now.month + 1)
    return date(year, month, 1)


def _dialect(session: AsyncSession) -> str:
    return session.bind.dialect.name if session.bind is not None else "sqlite"


async def _insert_ignore(
    session: AsyncSession, model: type[Any], values: dict[str, Any], columns: list[str], constraint: str
) -> None:
    if _dialect(session) == "postgresql":
        await session.execute(postgresql.insert(model).values(**values).on_conflict_do_nothing(constraint=constraint))
    else:
        await session.execute(sqlite.insert(model).values(**values).on_conflict_do_nothing(index_elements=columns))


def _default_preferences(user_id: int) -> Preference:
    """A user's preferences before they changed anything (not yet added to the session)."""
    return Preference(
        user_id=user_id,
        suffix="",
        options={},
        remix=False,
        mode="fast",
        visibility="public",
        variation="high",
        raw=False,
        stylize=None,
        model=None,
    )
