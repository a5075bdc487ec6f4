"""The web front door's pages: the region editor and the galleries, as one Starlette application.

Starlette (not FastAPI) because every page is server-rendered HTML from a form or a signed link: there is no JSON
API to describe and no request model to validate beyond a few form fields, so FastAPI's layer would add weight and
nothing used. Jinja2 renders with autoescape on (prompts and names are user text); the editor's JavaScript is one
plain file, no build step, so the pages are what the repository holds.

Every page is reached by a signed link (``links.py``) that names the user and what they may see; images are served
only through URLs signed by the page that checked the viewer may see them (``/img/<key>?e=…&s=…``), and a key is
only ever a store key (``ImageStore.path`` refuses anything else), so no URL reaches outside the image store.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from itsdangerous import BadSignature, Signer
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from impasto.bots.i18n.catalog import DEFAULT_LOCALE, catalogs, t
from impasto.bots.i18n.locale import accept_language, html_lang, served_locale
from impasto.bots.i18n.refusals import localize
from impasto.bots.language.errors import PromptError
from impasto.bots.moderation.outputs import RepostAction
from impasto.bots.service.delivery.core import REPLY_TO, reply_to_row
from impasto.bots.service.errors import ServiceError
from impasto.bots.service.gallery import Gallery, visible_to
from impasto.bots.service.jobs import JobService
from impasto.bots.service.views import ImageView, JobView
from impasto.bots.web.desk import desk_routes
from impasto.bots.web.guards import Guards, ReplyTarget, ReplyTargets
from impasto.bots.web.links import LinkError, Pass, Purpose, verify
from impasto.bots.web.masks import MaskError, store_mask
from impasto.bots.web.telegram_auth import InitDataError, validate_init_data
from impasto.queue.actions import Action
from impasto.queue.moderation.policy import Policy
from impasto.storage import locales as stored_locales
from impasto.storage.images import ImageKeyError

log = logging.getLogger("impasto.web")

HERE = Path(__file__).parent
#: The largest request body accepted (the editor's form: a prompt and a PNG data URL).
MAX_BODY_BYTES = 3 * 1024 * 1024
MAX_PROMPT_CHARS = 4000
#: Signed image URLs live this long (a page left open keeps showing its images for a while).
IMAGE_URL_SECONDS = 60 * 60
CSP = (
    "default-src 'none'; img-src 'self'; style-src 'self'; script-src 'self' https://telegram.org; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'self' https://web.telegram.org"
)
#: The catalog keys editor.js shows (``TEXT["web.…"]``), passed to it in the page as one JSON blob.
EDITOR_JS_KEYS = ("web.js_paint_first", "web.js_sending")


@dataclass
class WebDeps:
    service: JobService
    guards: Guards
    replies: ReplyTargets
    secret: str
    telegram_token: str | None = None  # validates Mini App initData; None: Mini App links are refused
    policy: Policy | None = None  # the prompt policy: the moderators' desk edits a server's words with it


class Refused(Exception):
    """A request answered with the one-line refusal page: the catalog message ``key`` with ``fields``, or ``raw``, a
    line the core wrote in English (read back into the page's language by ``refusals.localize``). ``lang``: the
    language of a link that was read but refused (an expired one), when the page has none yet."""

    def __init__(
        self, key: str, status: int = 403, *, raw: str | None = None, lang: str = "", **fields: object
    ) -> None:
        super().__init__(raw or key)
        self.key = key
        self.status = status
        self.raw = raw
        self.lang = lang
        self.fields = fields

    def text(self, locale: str) -> str:
        return localize(self.raw, locale) if self.raw is not None else t(self.key, locale, **self.fields)


def browser_locale(header: str | None) -> str:
    """The language a browser's ``Accept-Language`` asks for, among the catalogs; else English."""
    return accept_language(header) or DEFAULT_LOCALE


def request_locale(request: Request) -> str:
    """The page's language: set when the request's link was read (``grant_of``), else the browser's."""
    found = getattr(request.state, "locale", None)
    return str(found) if found else browser_locale(request.headers.get("accept-language"))


def page_globals(locale: str) -> dict[str, Any]:
    """What every template reads the catalogs through, bound to the page's language."""

    def tr(key: str, /, **fields: object) -> str:
        return t(key, locale, **fields)

    def tm(key: str, /, **fields: object) -> Markup:
        """``t`` for a message with markup around its fields: the fields escaped, the catalog's text trusted."""
        return Markup(t(key, locale, **{k: v if isinstance(v, Markup) else escape(v) for k, v in fields.items()}))

    def known(key: str, fallback: str, /, **fields: object) -> str:
        """``key`` in the page's language when a catalog has it, else ``fallback`` (a stored value, as it is)."""
        return t(key, locale, **fields) if catalogs().template(key, locale) is not None else fallback

    return {
        "t": tr,
        "tm": tm,
        "known": known,
        "say": lambda line: localize(line, locale) if line else line,
        "code": lambda value: Markup("<code>{}</code>").format(value),
        "locale": locale,
        "lang": html_lang(locale),
    }


def repost_refusal(shown: RepostAction) -> str:
    """The catalog line refusing a flagged picture on the web: held for review, else flagged (withheld or spoiler)."""
    return "repost.refusal.held" if shown == "held" else "repost.refusal.flagged"


def build_app(deps: WebDeps) -> Starlette:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True), auto_reload=False
    )
    gallery = Gallery(deps.service.sessions)
    image_signer = Signer(deps.secret, salt="impasto-web-image")

    def image_url(image: ImageView, *, download: bool = False) -> str:
        expires = int(time.time()) + IMAGE_URL_SECONDS
        sig = image_signer.get_signature(f"{image.key}:{expires}").decode()
        url = f"/img/{image.key}?e={expires}&s={sig}"
        return url + "&dl=1" if download else url

    def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        locale = request_locale(request)
        html = env.get_template(name).render(image_url=image_url, thumb=thumb, **page_globals(locale), **context)
        return HTMLResponse(html, status_code=status)

    async def page_locale(request: Request, grant: Pass) -> str:
        """The language recorded in the link, else the user's stored choice (/settings), else the browser's."""
        if found := served_locale(grant.lang):
            return found
        if grant.purpose == "download":  # posted where others read it: whoever opens it, not its owner's choice
            return browser_locale(request.headers.get("accept-language"))
        try:
            async with deps.service.sessions() as session:
                chosen, _server = await stored_locales.chosen_locales(session, grant.platform, grant.user_id, None)
        except Exception as exc:  # an outage: the browser's language rather than no page
            log.warning("the user's language could not be read (%s); the browser's is used", exc)
            chosen = None
        return served_locale(chosen) or browser_locale(request.headers.get("accept-language"))

    async def grant_of(request: Request, token: str | None, purpose: Purpose) -> Pass:
        """The link's grant; the page's language is settled here (``request.state.locale``)."""
        if not token:
            raise Refused("web.need_link", 400)
        try:
            grant = verify(deps.secret, token, purpose)
        except LinkError as exc:
            raise Refused(exc.key, raw=None if exc.key else exc.message, lang=exc.lang) from None
        request.state.locale = await page_locale(request, grant)
        return grant

    async def rate_limited(grant: Pass) -> None:
        if not await deps.guards.allow(grant.user_key):
            raise Refused("web.too_many", 429)

    # ------------------------------------------------------------------------------------------------ the editor

    async def editor_context(grant: Pass) -> tuple[JobView, ImageView]:
        try:
            job = await deps.service.job(grant.job_id or "")
        except ServiceError as exc:
            raise Refused("", 404, raw=exc.message) from None
        image = source_image(job, grant.index)
        if image is None:
            raise Refused("web.no_image_to_edit", 404, job=job.job_id, index=grant.index or 1)
        return job, image

    def editor_page(request: Request, status: int = 200, **context: Any) -> HTMLResponse:
        locale = request_locale(request)
        js_text = {key: t(key, locale) for key in EDITOR_JS_KEYS}
        return render(request, "editor.html", status=status, js_text=js_text, **context)

    async def edit_page(request: Request) -> Response:
        grant = await grant_of(request, request.query_params.get("t"), "edit")
        await rate_limited(grant)
        if await deps.guards.is_spent(grant.nonce):
            raise Refused("web.link_used", 410)
        job, image = await editor_context(grant)
        return editor_page(request, grant=grant, job=job, image=image, token=request.query_params["t"], prompt=None)

    async def edit_submit(request: Request) -> Response:
        form = await request.form()
        token = str(form.get("t") or "")
        grant = await grant_of(request, token, "edit")
        await rate_limited(grant)
        prompt = str(form.get("prompt") or "").strip()
        job, image = await editor_context(grant)
        locale = request_locale(request)

        def again(message: str) -> HTMLResponse:
            return editor_page(
                request, status=400, grant=grant, job=job, image=image, token=token, prompt=prompt, error=message
            )

        if grant.webapp:
            check_webapp(grant, str(form.get("init_data") or ""))
        if len(prompt) > MAX_PROMPT_CHARS:
            return again(t("web.prompt_too_long", locale, length=len(prompt), max=MAX_PROMPT_CHARS))
        if not await deps.guards.spend(grant.nonce):
            raise Refused("web.link_used", 410)
        try:
            mask = str(form.get("mask") or "")
            # Decoding and storing (a bucket behind the store: network I/O) run off the event loop.
            mask_key = await asyncio.to_thread(store_mask, deps.service.images, mask, (image.width_px, image.height_px))
            result = await deps.service.press(
                grant.requester,
                job.job_id,
                Action.VARY_REGION,
                grant.index,
                idempotency_key=f"web:{grant.nonce}",
                remix_text=prompt or job.display,
                mask_key=mask_key,
            )
        except MaskError as exc:
            await deps.guards.unspend(grant.nonce)  # nothing was made: the link may try again
            return again(t(exc.key, locale, **exc.fields) if exc.key else localize(exc.message, locale))
        except (ServiceError, PromptError) as exc:
            await deps.guards.unspend(grant.nonce)  # refused before any row or charge: the link may try again
            return again(localize(exc.message, locale))
        assert result.ticket is not None
        await deps.replies.save(
            result.ticket.job_id,
            ReplyTarget(grant.platform, grant.channel_id, grant.message_id, grant.guild_id),
        )
        if grant.channel_id is not None and grant.message_id is not None:
            # The message index says where the result goes: the chat's delivery core opens the job's message there,
            # as a reply to the message whose Vary (Region) button was pressed.
            await deps.service.record_message(
                result.ticket.job_id,
                grant.platform,
                grant.channel_id,
                reply_to_row(result.ticket.job_id, grant.message_id),
                REPLY_TO,
            )
        return render(request, "submitted.html", grant=grant, job=job, ticket=result.ticket)

    def check_webapp(grant: Pass, init_data: str) -> None:
        if deps.telegram_token is None:
            raise Refused("web.no_telegram")
        try:
            user = validate_init_data(init_data, deps.telegram_token)
        except InitDataError as exc:
            raise Refused(exc.key, raw=None if exc.key else exc.message) from None
        if user.user_id != grant.user_id:
            raise Refused("web.other_telegram_user")

    # --------------------------------------------------------------------------------------------- the galleries

    async def my_gallery(request: Request) -> Response:
        token = request.query_params.get("t")
        grant = await grant_of(request, token, "gallery")
        await rate_limited(grant)
        search = request.query_params.get("q", "")[:200]
        favorites = request.query_params.get("fav") == "1"
        page = await gallery.mine(
            grant.platform, grant.user_id, page=page_number(request), search=search, favorites_only=favorites
        )
        return render(
            request,
            "gallery.html",
            kind="gallery",
            grant=grant,
            token=token,
            page=page,
            search=search,
            favorites=favorites,
        )

    async def public_gallery(request: Request) -> Response:
        token = request.query_params.get("t")
        grant = await grant_of(request, token, "public")
        await rate_limited(grant)
        assert grant.guild_id is not None
        page = await gallery.public(grant.platform, grant.guild_id, page=page_number(request))
        return render(
            request, "gallery.html", kind="public", grant=grant, token=token, page=page, search="", favorites=False
        )

    async def job_page(request: Request) -> Response:
        token = request.query_params.get("t")
        purpose: Purpose = "public" if request.query_params.get("from") == "public" else "gallery"
        grant = await grant_of(request, token, purpose)
        await rate_limited(grant)
        try:
            job = await deps.service.job(request.path_params["job_id"])
        except ServiceError:
            raise Refused("web.no_such_job", 404) from None
        if not may_see(grant, job):
            raise Refused("web.no_such_job", 404)
        lineage = await gallery.lineage(job, viewer=(grant.platform, grant.user_id))
        children = tuple(c for c in lineage.children if may_see(grant, c))
        parent = lineage.parent if lineage.parent is not None and may_see(grant, lineage.parent) else None
        return render(
            request, "job.html", grant=grant, token=token, purpose=purpose, job=job, parent=parent, children=children
        )

    async def favorite(request: Request) -> Response:
        """❤️ on a job page: the owner toggles the flag the ❤️ filter reads (the same core call as the chat button)."""
        form = await request.form()
        token = str(form.get("t") or "")
        grant = await grant_of(request, token, "gallery")
        await rate_limited(grant)
        job_id = request.path_params["job_id"]
        try:
            await deps.service.press(
                grant.requester, job_id, Action.FAVORITE, idempotency_key=f"web-fav:{grant.user_key}:{job_id}"
            )
        except ServiceError as exc:
            raise Refused("", raw=exc.message) from None
        return RedirectResponse(f"/job/{quote(job_id)}?{urlencode({'t': token, 'from': 'gallery'})}", 303)

    # --------------------------------------------------------------------------------------------------- images

    async def image(request: Request) -> Response:
        key = request.path_params["key"]
        expires, sig = request.query_params.get("e", ""), request.query_params.get("s", "")
        try:
            if not expires.isdigit() or int(expires) < time.time():
                raise BadSignature("expired")
            if not image_signer.verify_signature(f"{key}:{expires}".encode(), sig.encode()):
                raise BadSignature("bad")
            deps.service.images.path(key)  # a store key, or ImageKeyError
        except (BadSignature, ImageKeyError):
            return PlainTextResponse(t("web.image_link_expired", request_locale(request)), 403)
        if (flagged := await deps.service.flagged_picture(key)) is not None:
            job_id, index = flagged
            shown = await deps.service.web_action(await deps.service.job(job_id), index)
            if shown != "deliver":  # the web has no spoiler: a spoilered picture is refused here too
                return PlainTextResponse(t(repost_refusal(shown), request_locale(request), job=job_id), 403)
        try:
            path = await asyncio.to_thread(deps.service.images.local_file, key)  # from the bucket, if there is one
        except OSError as exc:
            log.warning("image %s: the image store failed: %s", key, exc)
            return PlainTextResponse(t("web.store_unavailable", request_locale(request)), 503)
        if path is None:
            return PlainTextResponse(t("web.no_such_image", request_locale(request)), 404)
        headers = {"Cache-Control": "private, max-age=3600"}
        if request.query_params.get("dl") == "1":
            headers["Content-Disposition"] = f'attachment; filename="impasto-{key[:12]}.{key.rsplit(".", 1)[1]}"'
        return FileResponse(path, headers=headers)

    async def download(request: Request) -> Response:
        """A result's full-resolution PNG, byte for byte, from the link delivery posts under a result too large for
        the chat (``links.download_link``). The file is the store key SQL holds for the link's job and image: nothing
        in the URL names a path. Stealth jobs open only through their owner's link."""
        grant = await grant_of(request, request.query_params.get("t"), "download")
        # Counted per job, not per owner: a link posted in a busy channel must not use up the owner's own budget.
        if not await deps.guards.allow(f"download:{grant.platform}:{grant.job_id}"):
            raise Refused("web.too_many_downloads", 429)
        gone = Refused("web.no_such_download", 404)
        try:
            job = await deps.service.job(grant.job_id or "")
        except ServiceError:
            raise gone from None
        image = job.image(grant.index or 0)
        if image is None or not visible_to(job, (grant.platform, grant.user_id)):
            raise gone
        shown = await deps.service.web_action(job, image.index)
        if shown != "deliver":  # a flagged result as its server has it outside NSFW channels; a file has no spoiler
            raise Refused(repost_refusal(shown), 403, job=job.job_id)
        try:
            path = await asyncio.to_thread(deps.service.images.local_file, image.key)
        except ImageKeyError:
            raise gone from None
        except OSError as exc:  # a bucket that fails: the link is good, the store is not answering
            log.warning("download of job %s: the image store failed: %s", job.job_id, exc)
            raise Refused("web.store_unavailable", 503) from None
        if path is None:
            raise gone
        ext = image.key.rsplit(".", 1)[1]
        return FileResponse(
            path,
            media_type="image/png" if ext == "png" else None,
            filename=f"impasto_{job.job_id}_{image.index}.{ext}",
            content_disposition_type="attachment",
            headers={"Cache-Control": "private, max-age=86400"},
        )

    async def home(request: Request) -> Response:
        return render(request, "home.html")

    routes = [
        Route("/", home),
        Route("/edit", edit_page, methods=["GET"]),
        Route("/edit", edit_submit, methods=["POST"]),
        Route("/gallery", my_gallery),
        Route("/public", public_gallery),
        Route("/job/{job_id:str}", job_page),
        Route("/job/{job_id:str}/favorite", favorite, methods=["POST"]),
        Route("/img/{key:str}", image),
        Route("/download", download),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        *desk_routes(deps.service, deps.policy, render=render, grant_of=grant_of, limit=rate_limited, refuse=Refused),
    ]

    async def on_refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Refused)
        if not getattr(request.state, "locale", None) and (found := served_locale(exc.lang)):
            request.state.locale = found  # an expired link still says whose language its page was in
        return render(request, "refused.html", status=exc.status, message=exc.text(request_locale(request)))

    app = Starlette(routes=routes, exception_handlers={Refused: on_refused})
    app.add_middleware(SecurityHeaders)
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)
    return app


def may_see(grant: Pass, job: JobView) -> bool:
    """A gallery link sees its owner's jobs and public ones of their platform; a server's link its public jobs."""
    if grant.purpose == "public":
        return (job.platform, job.guild_id) == (grant.platform, grant.guild_id) and visible_to(job, None)
    if (job.platform, job.user_id) == (grant.platform, grant.user_id):
        return True
    return job.platform == grant.platform and visible_to(job, None)


def source_image(job: JobView, index: int | None) -> ImageView | None:
    """The image the region editor paints on: a grid's chosen image, or a single result."""
    if index is not None:
        return job.image(index)
    return job.image(1) or (job.images[0] if job.images else None)


def thumb(job: JobView) -> ImageView | None:
    """What a gallery tile shows: the grid if there is one, else the single image."""
    return job.image(0) or job.image(1) or (job.images[0] if job.images else None)


def page_number(request: Request) -> int:
    raw = request.query_params.get("page", "1")
    return max(1, min(int(raw), 10_000)) if raw.isdigit() else 1


class SecurityHeaders:
    """A Content-Security-Policy and friends on every response (tokens ride in URLs: no referrer leaves)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"content-security-policy", CSP.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                ]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyLimit:
    """Refuses request bodies over ``max_bytes``: by Content-Length up front, and while streaming otherwise."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            language = dict(scope.get("headers", [])).get(b"accept-language", b"").decode("latin-1")
            await _too_large(self.max_bytes, browser_locale(language))(scope, receive, send)
            return
        seen = 0

        async def capped() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise Refused("web.too_large", 413, kb=self.max_bytes // 1024)
            return message

        await self.app(scope, capped, send)


def _too_large(max_bytes: int, locale: str) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    return PlainTextResponse(t("web.too_large", locale, kb=max_bytes // 1024), 413)
