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
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from itsdangerous import BadSignature, Signer
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from impasto.bots.language.errors import PromptError
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
from impasto.storage.images import ImageKeyError

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


@dataclass
class WebDeps:
    service: JobService
    guards: Guards
    replies: ReplyTargets
    secret: str
    telegram_token: str | None = None  # validates Mini App initData; None: Mini App links are refused
    policy: Policy | None = None  # the prompt policy: the moderators' desk edits a server's words with it


class Refused(Exception):
    """A request answered with the one-line refusal page."""

    def __init__(self, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


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

    def render(name: str, status: int = 200, **context: Any) -> HTMLResponse:
        html = env.get_template(name).render(image_url=image_url, thumb=thumb, **context)
        return HTMLResponse(html, status_code=status)

    def refused(message: str, status: int = 403) -> HTMLResponse:
        return render("refused.html", status=status, message=message)

    def grant_of(token: str | None, purpose: Purpose) -> Pass:
        if not token:
            raise Refused("this page is opened from a link the bot sends; ask the bot for one", 400)
        try:
            return verify(deps.secret, token, purpose)
        except LinkError as exc:
            raise Refused(exc.message) from None

    async def rate_limited(grant: Pass) -> None:
        if not await deps.guards.allow(grant.user_key):
            raise Refused("too many requests; wait a minute and try again", 429)

    # ------------------------------------------------------------------------------------------------ the editor

    async def editor_context(grant: Pass) -> tuple[JobView, ImageView]:
        try:
            job = await deps.service.job(grant.job_id or "")
        except ServiceError as exc:
            raise Refused(exc.message, 404) from None
        image = source_image(job, grant.index)
        if image is None:
            raise Refused(f"job {job.job_id} has no image {grant.index or 1} to edit", 404)
        return job, image

    async def edit_page(request: Request) -> Response:
        grant = grant_of(request.query_params.get("t"), "edit")
        await rate_limited(grant)
        if await deps.guards.is_spent(grant.nonce):
            raise Refused("this link was already used; press Vary (Region) again for a fresh one", 410)
        job, image = await editor_context(grant)
        return render("editor.html", grant=grant, job=job, image=image, token=request.query_params["t"], prompt=None)

    async def edit_submit(request: Request) -> Response:
        form = await request.form()
        token = str(form.get("t") or "")
        grant = grant_of(token, "edit")
        await rate_limited(grant)
        prompt = str(form.get("prompt") or "").strip()
        job, image = await editor_context(grant)

        def again(message: str) -> HTMLResponse:
            return render(
                "editor.html", status=400, grant=grant, job=job, image=image, token=token, prompt=prompt, error=message
            )

        if grant.webapp:
            check_webapp(grant, str(form.get("init_data") or ""))
        if len(prompt) > MAX_PROMPT_CHARS:
            return again(f"the prompt is {len(prompt)} characters; at most {MAX_PROMPT_CHARS}")
        if not await deps.guards.spend(grant.nonce):
            raise Refused("this link was already used; press Vary (Region) again for a fresh one", 410)
        try:
            mask_key = store_mask(deps.service.images, str(form.get("mask") or ""), (image.width_px, image.height_px))
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
            return again(exc.message)
        except (ServiceError, PromptError) as exc:
            await deps.guards.unspend(grant.nonce)  # refused before any row or charge: the link may try again
            return again(exc.message)
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
        return render("submitted.html", grant=grant, job=job, ticket=result.ticket)

    def check_webapp(grant: Pass, init_data: str) -> None:
        if deps.telegram_token is None:
            raise Refused("this server cannot check Telegram sign-ins; open the link from the bot in a browser")
        try:
            user = validate_init_data(init_data, deps.telegram_token)
        except InitDataError as exc:
            raise Refused(exc.message) from None
        if user.user_id != grant.user_id:
            raise Refused("this editor was opened for another Telegram user")

    # --------------------------------------------------------------------------------------------- the galleries

    async def my_gallery(request: Request) -> Response:
        token = request.query_params.get("t")
        grant = grant_of(token, "gallery")
        await rate_limited(grant)
        search = request.query_params.get("q", "")[:200]
        favorites = request.query_params.get("fav") == "1"
        page = await gallery.mine(
            grant.platform, grant.user_id, page=page_number(request), search=search, favorites_only=favorites
        )
        return render(
            "gallery.html", kind="gallery", grant=grant, token=token, page=page, search=search, favorites=favorites
        )

    async def public_gallery(request: Request) -> Response:
        token = request.query_params.get("t")
        grant = grant_of(token, "public")
        await rate_limited(grant)
        assert grant.guild_id is not None
        page = await gallery.public(grant.platform, grant.guild_id, page=page_number(request))
        return render("gallery.html", kind="public", grant=grant, token=token, page=page, search="", favorites=False)

    async def job_page(request: Request) -> Response:
        token = request.query_params.get("t")
        purpose: Purpose = "public" if request.query_params.get("from") == "public" else "gallery"
        grant = grant_of(token, purpose)
        await rate_limited(grant)
        try:
            job = await deps.service.job(request.path_params["job_id"])
        except ServiceError:
            raise Refused("no such job, or not one you may see", 404) from None
        if not may_see(grant, job):
            raise Refused("no such job, or not one you may see", 404)
        lineage = await gallery.lineage(job, viewer=(grant.platform, grant.user_id))
        children = tuple(c for c in lineage.children if may_see(grant, c))
        parent = lineage.parent if lineage.parent is not None and may_see(grant, lineage.parent) else None
        return render("job.html", grant=grant, token=token, purpose=purpose, job=job, parent=parent, children=children)

    async def favorite(request: Request) -> Response:
        """❤️ on a job page: the owner toggles the flag the ❤️ filter reads (the same core call as the chat button)."""
        form = await request.form()
        token = str(form.get("t") or "")
        grant = grant_of(token, "gallery")
        await rate_limited(grant)
        job_id = request.path_params["job_id"]
        try:
            await deps.service.press(
                grant.requester, job_id, Action.FAVORITE, idempotency_key=f"web-fav:{grant.user_key}:{job_id}"
            )
        except ServiceError as exc:
            raise Refused(exc.message) from None
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
            return PlainTextResponse("this image link is not valid or has expired; reload the page", 403)
        path = await asyncio.to_thread(deps.service.images.local_file, key)  # from the bucket, if there is one
        if path is None:
            return PlainTextResponse("no such image", 404)
        headers = {"Cache-Control": "private, max-age=3600"}
        if request.query_params.get("dl") == "1":
            headers["Content-Disposition"] = f'attachment; filename="impasto-{key[:12]}.{key.rsplit(".", 1)[1]}"'
        return FileResponse(path, headers=headers)

    async def download(request: Request) -> Response:
        """A result's full-resolution PNG, byte for byte, from the link delivery posts under a result too large for
        the chat (``links.download_link``). The file is the store key SQL holds for the link's job and image: nothing
        in the URL names a path. Stealth jobs open only through their owner's link."""
        grant = grant_of(request.query_params.get("t"), "download")
        # Counted per job, not per owner: a link posted in a busy channel must not use up the owner's own budget.
        if not await deps.guards.allow(f"download:{grant.platform}:{grant.job_id}"):
            raise Refused("too many downloads of this image; wait a minute and try again", 429)
        gone = Refused("no such image, or not one this link may download", 404)
        try:
            job = await deps.service.job(grant.job_id or "")
        except ServiceError:
            raise gone from None
        image = job.image(grant.index or 0)
        if image is None or not visible_to(job, (grant.platform, grant.user_id)):
            raise gone
        try:
            path = await asyncio.to_thread(deps.service.images.local_file, image.key)
        except ImageKeyError:
            raise gone from None
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
        return render("home.html")

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
        return refused(exc.message, exc.status)

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
            await _too_large(self.max_bytes)(scope, receive, send)
            return
        seen = 0

        async def capped() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise Refused(f"the request is larger than {self.max_bytes // 1024} KB", 413)
            return message

        await self.app(scope, capped, send)


def _too_large(max_bytes: int) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    return PlainTextResponse(f"the request is larger than {max_bytes // 1024} KB", 413)
