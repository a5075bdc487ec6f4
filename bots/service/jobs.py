"""The job service: what every front door calls to make, press, cancel and look up jobs.

One ``JobService`` is built in ``main()`` from the session factory, the image store, the model registry, the plans
and an ``enqueue`` callable, and shared by every handler. It is the union of small concept modules (reading,
preferences, guilds, the message index) and, here, the entry points that make jobs: ``imagine``, ``blend`` and
``press``. Each of them builds an ``Intent`` and drafts and hands them to the one admission pipeline
(``admission.py``: context → policy checks → engine capabilities → quota hold → rows → enqueue). The service owns
the transactions; SQL lives in ``impasto.storage``.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from impasto.bots.i18n.catalog import t
from impasto.bots.language.job import Job as ParsedJob
from impasto.bots.language.parser import parse_blend, parse_imagine
from impasto.bots.service.admission import Admission, request_key
from impasto.bots.service.checks import POLICY_CHECKS, Intent, PolicyCheck
from impasto.bots.service.context import Context
from impasto.bots.service.describe import check_image_bytes, chosen_prompts, described_image
from impasto.bots.service.drafts import Draft, Drafter, input_image
from impasto.bots.service.errors import InvalidRequest, JobNotReady, NotYourJob
from impasto.bots.service.fetch import FetchError, FetchImage, image_extension
from impasto.bots.service.flagged import FlaggedResults
from impasto.bots.service.guilds import Guilds
from impasto.bots.service.messages import MessageIndex
from impasto.bots.service.preferences import PreferencesMixin
from impasto.bots.service.replay import who_of
from impasto.bots.service.requester import Requester
from impasto.bots.service.views import Enqueue, JobTicket, JobView, PressResult
from impasto.engine.registry import Registry
from impasto.queue.actions import Action
from impasto.storage import history
from impasto.storage.images import KEY_PATTERN, ImageStore
from impasto.storage.lifecycle import release_held, request_cancel, user_of
from impasto.storage.models import ACTIVE_STATUSES, CANCELLED, DONE
from impasto.storage.plans import Plans


class JobService(MessageIndex, PreferencesMixin, Guilds, FlaggedResults):
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
        checks: Sequence[PolicyCheck] = POLICY_CHECKS,
    ) -> None:
        """``fetch_image`` downloads image prompt links into the store (``fetch.http_fetcher`` in production);
        without it, links are kept as they are and only store keys given by the bot reach the worker. ``checks``
        are the admission pipeline's policy checks (``checks.POLICY_CHECKS``)."""
        self.fetch_image = fetch_image
        self.sessions = sessions
        self.images = images
        self.registry = registry
        self.plans = plans
        self.enqueue = enqueue
        self.drafts = Drafter(registry, plans, rng)
        self.admission = Admission(sessions, plans, enqueue, checks, registry)

    # ----------------------------------------------------------------------------------------------- making jobs

    async def imagine(
        self,
        who: Requester,
        text: str,
        *,
        image_urls: Sequence[str] = (),
        idempotency_key: str,
        stored_links: Mapping[str, str] | None = None,
    ) -> list[JobTicket]:
        """``/imagine``: parse, admit (quota, limits) and queue one job per permutation × repeat.

        ``image_urls`` (attachments) go in front of the text as image prompts. Raises PromptError for a bad prompt,
        a ``ServiceError`` when refused (nothing is charged then). The same ``idempotency_key`` again returns the
        first call's tickets with ``duplicate=True``. ``stored_links``: links whose copies are in the store already
        (link -> key; an appeal's rerun, whose attachment links may have expired): not fetched again.
        """
        key = request_key(idempotency_key)
        ctx = await self.admission.start(who, key)
        if not isinstance(ctx, Context):
            return ctx  # an earlier request's tickets
        full_text = " ".join([*image_urls, text]).strip()
        parsed = parse_imagine(
            full_text, registry=self.registry, preferences=ctx.preferences, max_permutations=ctx.plan.max_permutations
        )
        drafts = [self.drafts.from_parsed(job, action=Action.IMAGINE, prompt=text) for job in parsed]
        if len(drafts) > 1 and any(draft.mode == "relax" for draft in drafts):
            # Midjourney's rule: many jobs from one prompt would crowd the free lane.
            raise InvalidRequest(
                f"permutations and --repeat run only in fast or turbo mode, and this prompt makes {len(drafts)} "
                "relax jobs; add --fast (or switch with /fast), or send them one at a time"
            )
        stored = await self._store_links([url for job in parsed for url in _links(job)], stored_links)
        for draft in drafts:
            _use_keys(draft, stored)
        request = {"entry": "imagine", "text": text, "image_urls": list(image_urls), "stored": stored}
        intent = Intent("imagine", Action.IMAGINE, text, request=request)
        return await self.admission.submit(ctx, intent, drafts, key, looked_up=True)

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
        key = request_key(idempotency_key)
        ctx = await self.admission.start(who, key)
        if not isinstance(ctx, Context):
            return ctx  # an earlier request's tickets
        parsed = parse_blend(image_urls, dimensions, registry=self.registry, preferences=ctx.preferences)
        keys = [self._checked_key(k) for k in image_keys]
        if keys and len(keys) != len(image_urls):
            raise InvalidRequest(f"/blend got {len(image_urls)} images but {len(keys)} stored copies")
        draft = self.drafts.from_parsed(parsed, action=Action.BLEND, prompt=" ".join(image_urls))
        if keys:
            stored = dict(zip(parsed.image_prompts, keys, strict=True))
            stored.update(await self._store_links(list(parsed.style_references)))
        else:
            stored = await self._store_links(_links(parsed))
        _use_keys(draft, stored)
        draft.input_image_keys = [str(k) for k in draft.params["image_prompts"]] if stored else []
        request = {
            "entry": "blend",
            "image_urls": list(image_urls),
            "dimensions": dimensions,
            "image_keys": [stored.get(u, u) for u in parsed.image_prompts] if stored else [],
        }
        intent = Intent("blend", Action.BLEND, "", request=request)
        return await self.admission.submit(ctx, intent, [draft], key, looked_up=True)

    async def describe(
        self,
        who: Requester,
        *,
        idempotency_key: str,
        image_key: str | None = None,
        link: str | None = None,
        job_id: str | None = None,
        index: int | None = None,
        display: str | None = None,
    ) -> JobTicket:
        """``/describe``: one job for the worker's captioner, which writes four prompts for an image.

        The image is exactly one of: ``image_key`` (an upload the adapter checked and stored), ``link`` (fetched
        here through the safe fetch, checked like an upload), or ``job_id`` (one of a job's pictures, ``index``
        1–4, else its only picture or its grid). Admitted like every job (policy checks, the model's captioner,
        quota hold, fair queue); ``display`` is how its messages name the image. The result is written in the
        asker's language (the job's ``locale``, as for every job).
        """
        key = request_key(idempotency_key)
        existing = await self.admission.replay(key)
        if existing is not None:
            return existing[0]
        if sum(x is not None for x in (image_key, link, job_id)) != 1:
            raise InvalidRequest(t("describe.refusal.one_image", "en"))
        parent_id: str | None = None
        picked: tuple[JobView, int] | None = None  # a job's picture: (the job, the image's index)
        if link is not None:
            link = link.strip()
            if not link.lower().startswith(("http://", "https://")):
                raise InvalidRequest(t("describe.refusal.bad_link", "en", link=link[:100]))
            if self.fetch_image is None:
                raise InvalidRequest(t("describe.refusal.no_links", "en"))
            try:
                data = await self.fetch_image(link)
                image_extension(data)
            except FetchError as exc:
                raise InvalidRequest(f"the image link {link[:100]} {exc}") from None
            check_image_bytes(data, link[:100])
            image_key = await asyncio.to_thread(self.images.put, data, image_extension(data))  # a bucket: network
            display = display or link
        elif job_id is not None:
            source = await self.job(job_id)
            if source.visibility != "public" and (source.platform, source.user_id) != (who.platform, who.user_id):
                raise NotYourJob(t("describe.refusal.not_yours", "en", job=source.job_id))
            if source.status != DONE:
                raise JobNotReady(f"job {source.job_id} is {source.status}; its buttons work once it is done")
            image_key, index = described_image(source, index)
            picked = (source, index)
            parent_id = source.job_id
            which = t("describe.grid_of_job", "en") if index == 0 else t("describe.image_of_job", "en", index=index)
            display = display or f"{source.display} ({which})"
        assert image_key is not None
        self._checked_key(image_key)
        ctx = await self.admission.context(who)
        if picked is not None:
            await self._check_flagged(ctx, *picked)
        draft = self.drafts.describe(
            ctx,
            display=(display or t("describe.an_image", "en"))[:1000],
            image_key=image_key,
            offset=0,
            parent_id=parent_id,
        )
        intent = Intent("describe", Action.DESCRIBE, "", parent_id)
        tickets = await self.admission.submit(ctx, intent, [draft], key, looked_up=True)
        return tickets[0]

    async def _check_flagged(self, ctx: Context, source: JobView, index: int) -> None:
        """A job's picture the image check flagged is shown with its description (Discord's embed, which takes no
        spoiler) and the worker does not check a job's own picture again: refused while the moderators have not
        decided, and wherever the asker's place would not deliver it as it is (``repost_action``, as ``/show``)."""
        action = await self.repost_action(source, guild_id=ctx.guild_id, nsfw_channel=ctx.who.nsfw_channel, index=index)
        if action == "held":
            raise InvalidRequest(t("describe.refusal.held", "en", job=source.job_id))
        if action != "deliver":
            raise InvalidRequest(t("describe.refusal.flagged", "en", job=source.job_id))

    async def _describe_press(
        self,
        who: Requester,
        parent: JobView,
        action: Action,
        index: int | None,
        key: str,
        edited: str | None,
        request: Mapping[str, object],
    ) -> PressResult:
        """A button under /describe's four prompts: 1–4 and Imagine all are /imagine of those prompts (policy and
        quota as any /imagine); 🔄 describes the same image again, ``offset`` one further (four other prompts).
        ``edited``: 1–4's prompt as the presser edited it first (Discord's dialog, as Midjourney's), imagined
        instead of the stored one."""
        if parent.action != Action.DESCRIBE.value:
            raise InvalidRequest(t("describe.refusal.not_a_describe_job", "en", job=parent.job_id))
        if parent.status != DONE:
            raise JobNotReady(f"job {parent.job_id} is {parent.status}; its buttons work once it is done")
        if action is Action.DESCRIBE_AGAIN:
            existing = await self.admission.replay(key)
            if existing is None:
                ctx = await self.admission.context(who)
                offset = parent.params.get("offset", 0)
                image_key = parent.params.get("image")
                if not isinstance(image_key, str):
                    raise InvalidRequest(t("describe.refusal.no_job_image", "en", job=parent.job_id))
                draft = self.drafts.describe(
                    ctx,
                    display=parent.display,
                    image_key=image_key,
                    offset=(offset if isinstance(offset, int) else 0) + 1,
                    parent_id=parent.job_id,
                )
                intent = Intent("press", action, "", parent.job_id)
                existing = await self.admission.submit(ctx, intent, [draft], key, looked_up=True)
            return PressResult("job", await self.job(existing[0].job_id), existing[0])
        prompts = chosen_prompts(parent, action, index)
        if edited is not None and action is Action.DESCRIBE_PICK:
            prompts = [edited]
        tickets = await self._imagine_all(who, prompts, key, request)
        return PressResult("job", await self.job(tickets[0].job_id), tickets[0], tuple(tickets))

    async def _imagine_all(
        self, who: Requester, prompts: Sequence[str], key: str, request: Mapping[str, object]
    ) -> list[JobTicket]:
        """/imagine of each prompt, as the presser would type it (their preferences, policy checks, quota), under one
        request key: a double click makes no second set. As /imagine refuses several relax jobs from one prompt
        (permutations, --repeat), so is a press that would make several relax jobs refused, before anything is
        charged."""
        ctx = await self.admission.start(who, key)
        if not isinstance(ctx, Context):
            return ctx  # an earlier request's tickets
        drafts = []
        for text in prompts:
            parsed = parse_imagine(
                text, registry=self.registry, preferences=ctx.preferences, max_permutations=ctx.plan.max_permutations
            )
            drafts += [self.drafts.from_parsed(job, action=Action.IMAGINE, prompt=text) for job in parsed]
        if len(drafts) > 1 and any(draft.mode == "relax" for draft in drafts):
            # /imagine's rule (Midjourney's): several jobs from one request run only in fast or turbo mode.
            raise InvalidRequest(t("describe.refusal.imagine_all_relax", "en", count=len(drafts)))
        intent = Intent("imagine", Action.IMAGINE, "\n".join(prompts), request=request)
        return await self.admission.submit(ctx, intent, drafts, key, looked_up=True)

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
        key = request_key(idempotency_key)
        if action.row.where == "command":
            raise InvalidRequest(f"{action.label} is a command, not a button")
        parent = await self.job(job_id)
        request = {
            "entry": "press",
            "job": job_id,
            "action": action.value,
            "index": index,
            "remix_text": remix_text,
            "mask_key": mask_key,
        }
        if action.row.where == "prompts":
            return await self._describe_press(who, parent, action, index, key, remix_text, request)
        if action is Action.DETAILS:
            return PressResult("details", parent)
        if action is Action.FAVORITE:
            return PressResult("favorite", await self._toggle_favorite(who, parent))
        if parent.status != DONE:
            raise JobNotReady(f"job {parent.job_id} is {parent.status}; its buttons work once it is done")
        ctx = await self.admission.context(who)
        text = remix_text if remix_text is not None else parent.prompt
        intent = Intent("press", action, text, parent.job_id, request=request)
        if action is Action.UPSCALE:
            return await self._pick(ctx, intent, parent, index, key)
        needs_text = action is Action.ZOOM_CUSTOM or (ctx.prefs.remix and action.remixable)
        if remix_text is None and needs_text:
            existing = await self.admission.replay(key)
            if existing is None:
                return PressResult("remix", parent)
        if action.row.needs_mask and mask_key is None:
            raise InvalidRequest(f"{action.label} needs the area to repaint: draw it in the editor, then submit")
        draft = self.drafts.child(ctx, parent, action, index, remix_text)
        if remix_text is not None:
            links = [str(u) for u in _links(draft.job) if not KEY_PATTERN.match(str(u))]
            _use_keys(draft, await self._store_links(links))
        if mask_key is not None and action.row.needs_mask:
            draft.input_image_keys.append(self._checked_key(mask_key))
        tickets = await self.admission.submit(ctx, intent, [draft], key)
        return PressResult("job", await self.job(tickets[0].job_id), tickets[0])

    async def rerun(self, request: Mapping[str, Any], *, idempotency_key: str) -> list[JobTicket]:
        """The call a refusal kept (``replay.py``) made again, for whom and where it was asked (the channel, its
        NSFW flag, the roles): an approved appeal. Every check runs as it did; the caller waives the policy."""
        who = who_of(request["who"])
        entry = request.get("entry")
        if entry == "imagine":
            return await self.imagine(
                who,
                str(request.get("text") or ""),
                image_urls=[str(u) for u in request.get("image_urls") or ()],
                idempotency_key=idempotency_key,
                stored_links={str(k): str(v) for k, v in (request.get("stored") or {}).items()},
            )
        if entry == "blend":
            dimensions = request.get("dimensions")
            return await self.blend(
                who,
                [str(u) for u in request.get("image_urls") or ()],
                str(dimensions) if dimensions is not None else None,
                idempotency_key=idempotency_key,
                image_keys=[str(k) for k in request.get("image_keys") or ()],
            )
        if entry == "press":
            index = request.get("index")
            remix_text, mask_key = request.get("remix_text"), request.get("mask_key")
            result = await self.press(
                who,
                str(request["job"]),
                Action(str(request["action"])),
                int(index) if index is not None else None,
                idempotency_key=idempotency_key,
                remix_text=str(remix_text) if remix_text is not None else None,
                mask_key=str(mask_key) if mask_key is not None else None,
            )
            if result.ticket is None:
                raise InvalidRequest(f"the {Action(str(request['action'])).label} press could not be made again")
            return list(result.tickets) or [result.ticket]
        raise InvalidRequest(f"a request of kind {entry!r} cannot be made again")

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
            await self.admission.announce(released)
        return status or view.status

    # ------------------------------------------------------------------------------------------------ internals

    async def _pick(self, ctx: Context, intent: Intent, parent: JobView, index: int | None, key: str) -> PressResult:
        """U1–U4: a free, finished job that holds the chosen grid image; the same pick twice returns the first."""
        image_key, index = input_image(parent, Action.UPSCALE, index)
        assert image_key is not None
        assert index is not None
        image = parent.image(index)
        assert image is not None
        # The pick posts the grid's picture again, unchecked by the worker: as the presser's place has it (/show).
        shown = await self.repost_action(parent, guild_id=ctx.guild_id, nsfw_channel=ctx.who.nsfw_channel, index=index)
        self.refuse_repost(parent.job_id, shown)
        spoiler = shown == "spoiler"
        async with self.sessions() as session:
            earlier = await history.earlier_pick(session, parent.job_id, index, ctx.user_id, Action.UPSCALE.value)
        if earlier is not None:
            # No new job, but the press is still checked: fifty presses of U2 make one job and polite refusals.
            await self.admission.check(ctx, intent)
            return PressResult("image", await self.job(earlier), spoiler=spoiler)
        tickets = await self.admission.submit(ctx, intent, [self.drafts.pick(parent, index, image)], key)
        return PressResult("image", await self.job(tickets[0].job_id), spoiler=spoiler)

    async def _toggle_favorite(self, who: Requester, parent: JobView) -> JobView:
        if (parent.platform, parent.user_id) != (who.platform, who.user_id):
            raise NotYourJob("only the job's owner can mark it as a favourite")
        async with self.sessions() as session, session.begin():
            await history.toggle_favorite(session, parent.job_id)
        return await self.job(parent.job_id)

    async def _store_links(self, urls: list[str], known: Mapping[str, str] | None = None) -> dict[str, str]:
        """Download each distinct image link into the store; link -> key. Nothing happens without a fetcher.
        ``known``: links already stored (link -> key), not fetched again."""
        if self.fetch_image is None and not known:
            return {}
        stored: dict[str, str] = {}
        for url in dict.fromkeys(urls):
            if KEY_PATTERN.match(url):
                stored[url] = url
                continue
            if known and url in known:
                stored[url] = self._checked_key(known[url])
                continue
            if self.fetch_image is None:
                continue
            try:
                data = await self.fetch_image(url)
                ext = image_extension(data)
            except FetchError as exc:
                raise InvalidRequest(f"the image link {url[:100]} {exc}") from None
            stored[url] = await asyncio.to_thread(self.images.put, data, ext)  # a bucket behind the store: network
        return stored

    def _checked_key(self, key: str) -> str:
        self.images.path(key)  # raises ImageKeyError for anything that is not a store key
        return key


def _links(job: ParsedJob) -> list[str]:
    """Every image link a job's worker will read: image prompts and --sref style references."""
    return [str(u) for u in (*job.image_prompts, *job.style_references)]


def _use_keys(draft: Draft, stored: Mapping[str, str]) -> None:
    """Point the job's image prompts and style references at their store copies (the worker reads only the store);
    keep the links (``image_prompt_urls``, ``style_reference_urls``)."""
    if not stored:
        return
    for field, urls in (("image_prompts", "image_prompt_urls"), ("style_references", "style_reference_urls")):
        links = [str(u) for u in draft.params.get(field, ())]
        if links:
            draft.params[urls] = links
            draft.params[field] = [stored.get(u, u) for u in links]
