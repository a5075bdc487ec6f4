"""The moderators' desk: a server's review queue with Approve / Reject, its audit log and its word lists, on the web.

Reached by a signed link that ``/mod desk`` sends a moderator privately (the bot checked their rights just then; the
link names the server and lasts 15 minutes). Every action is the same core call as the chat's buttons and commands
(``review.Review.decide``, ``moderation.commands``), audited with the moderator; an item of another server is
refused. The web process has no chat client: a held result approved here is posted by the bots, which read the
decision from the audit log (``feed.AuditFeed`` → ``review.follow_decision``); an approved appeal runs at once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from impasto.bots.i18n.catalog import DEFAULT_LOCALE, t
from impasto.bots.i18n.refusals import localize
from impasto.bots.moderation import commands as mod_commands
from impasto.bots.moderation.review import Review, log_line
from impasto.bots.service.jobs import JobService
from impasto.bots.web.links import Pass, Purpose
from impasto.queue.moderation.policy import Policy
from impasto.storage import moderation as mod
from impasto.storage.models import HELD

Render = Callable[..., HTMLResponse]
GrantOf = Callable[[Request, str | None, Purpose], Awaitable[Pass]]
Limit = Callable[[Pass], Awaitable[None]]
MAX_WORD_CHARS = 100


def page_locale(request: Request) -> str:
    """The page's language, settled by ``grant_of`` (the link's, the user's choice, the browser's)."""
    return str(getattr(request.state, "locale", None) or DEFAULT_LOCALE)


def desk_routes(
    service: JobService,
    policy: Policy | None,
    *,
    render: Render,
    grant_of: GrantOf,
    limit: Limit,
    refuse: Callable[[str], Exception],  # a catalog key: the one-line refusal page
) -> list[Route]:
    review = Review(service, policy)

    def back(token: str, said: str) -> RedirectResponse:
        return RedirectResponse(f"/desk?{urlencode({'t': token, 'said': said[:300]})}", 303)

    async def desk(request: Request) -> Response:
        token = request.query_params.get("t")
        grant = await grant_of(request, token, "desk")
        await limit(grant)
        assert grant.guild_id is not None
        locale = page_locale(request)
        items = await review.pending(grant.platform, grant.guild_id)
        pictures: dict[int, Any] = {}
        for item in items:
            if item.kind == HELD and item.job_id is not None:
                job = await service.job(item.job_id)
                pictures[item.id] = job.image(0) or (job.images[0] if job.images else None)
        rows = await review.log(grant.platform, grant.guild_id, limit=50)
        async with service.sessions() as session:
            guild_id = await mod.guild_id_for(session, grant.platform, grant.guild_id)
            stored = await mod.server_moderation(session, guild_id)
        categories = {n: c.label for n, c in policy.categories.items() if not c.locked} if policy else {}
        return render(
            request,
            "desk.html",
            grant=grant,
            token=token,
            items=items,
            pictures=pictures,
            log=[log_line(r, locale) for r in rows],
            added=sorted(stored.added),
            removed=sorted(stored.removed),
            categories=categories,
            said=request.query_params.get("said", "")[:300],
        )

    async def decide(request: Request) -> Response:
        form = await request.form()
        token = str(form.get("t") or "")
        grant = await grant_of(request, token, "desk")
        await limit(grant)
        raw = str(form.get("id") or "")
        item = await review.item(int(raw)) if raw.isdigit() else None
        if item is None or item.platform != grant.platform or item.guild != grant.guild_id:
            raise refuse("web.not_in_queue")
        decision = await review.decide(item.id, grant.platform, grant.user_id, approve=form.get("verdict") == "approve")
        return back(token, localize(decision.line, page_locale(request)))

    async def words(request: Request) -> Response:
        form = await request.form()
        token = str(form.get("t") or "")
        grant = await grant_of(request, token, "desk")
        await limit(grant)
        if policy is None:
            raise refuse("web.no_policy")
        locale = page_locale(request)
        word = str(form.get("word") or "").strip()
        if not word or len(word) > MAX_WORD_CHARS:
            return back(token, t("web.word_length", locale, max=MAX_WORD_CHARS))
        assert grant.guild_id is not None
        async with service.sessions() as session, session.begin():
            guild_id = await mod.guild_id_for(session, grant.platform, grant.guild_id)
            moderator_id = await mod.user_id_for(session, grant.platform, grant.user_id)
            try:
                if form.get("op") == "remove":
                    line = await mod_commands.remove_word(
                        session, policy, guild_id=guild_id, moderator_id=moderator_id, word=word, locale=locale
                    )
                else:
                    category = str(form.get("category") or "custom")
                    line = await mod_commands.add_word(
                        session,
                        policy,
                        guild_id=guild_id,
                        moderator_id=moderator_id,
                        word=word,
                        category=category,
                        locale=locale,
                    )
            except mod_commands.ModerationCommandError as exc:
                line = str(exc)
        return back(token, line)

    return [
        Route("/desk", desk, methods=["GET"]),
        Route("/desk/decide", decide, methods=["POST"]),
        Route("/desk/words", words, methods=["POST"]),
    ]
