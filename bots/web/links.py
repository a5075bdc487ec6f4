"""Signed links into the web front door: who pressed what, where, until when.

A link's token is a payload signed with ``IMPASTO_WEB_SECRET`` (itsdangerous, HMAC-SHA256, one salt per purpose so
an editor token never opens a gallery). The payload names the presser (platform, user id, display name), where they
pressed (guild/chat, channel, the source message), the job and image, the purpose and an absolute expiry; editor
tokens also carry a random nonce that is spent when the form is submitted (``spent.py``). The adapters call the pure
``editor_link`` / ``gallery_link`` / ``public_gallery_link`` to put a fresh link behind a button each time it is
pressed; pressing again gives a new nonce, so a new link. ``download_link`` is the full-resolution PNG of one job's
image, made by delivery when the PNG does not fit the chat: not spent on use, valid for days (people come back to a
result), and for a stealth job only when made for its owner.

Expiry lives in the payload (not itsdangerous' timed signer) so that tests and callers pass ``now`` explicitly.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import asdict, dataclass, replace
from typing import Literal, Protocol
from urllib.parse import urlencode

from itsdangerous import BadSignature, URLSafeSerializer

from impasto.bots.service.requester import Requester

Purpose = Literal["edit", "gallery", "public", "download", "desk"]

DAY = 24 * 60 * 60
#: How long a link works, by purpose (seconds). The issue fixes the editor's at 15 minutes; a download link's is
#: ``IMPASTO_WEB_DOWNLOAD_DAYS`` (``Settings.web_download_days``), 7 days by default.
LIFETIMES: dict[Purpose, int] = {
    "edit": 15 * 60,
    "gallery": 60 * 60,
    "public": DAY,
    "download": 7 * DAY,
    "desk": 15 * 60,  # the moderators' desk: the bot checked the moderator's rights just now
}
PATHS: dict[Purpose, str] = {
    "edit": "/edit",
    "gallery": "/gallery",
    "public": "/public",
    "download": "/download",
    "desk": "/desk",
}


class LinkError(Exception):
    """A link that is forged, tampered with, for another page, or expired; ``message`` is the one line (English),
    ``key`` its catalog key (``web.*``, for the page's language), ``lang`` the language of an expired link's page."""

    def __init__(self, message: str, key: str = "", lang: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.key = key
        self.lang = lang


class WebLinkSettings(Protocol):
    """What link-making needs from ``Settings``: the public base URL and the secret."""

    @property
    def web_url(self) -> str | None: ...

    @property
    def web_secret_value(self) -> str | None: ...


@dataclass(frozen=True)
class Pass:
    """What a signed link grants: one purpose, for one user, from one place (and, for the editor, one job)."""

    purpose: Purpose
    platform: str
    user_id: str
    name: str = ""
    guild_id: str | None = None  # the server (Discord guild, Telegram group); the public gallery's scope
    channel_id: str | None = None  # where the button was pressed: the region job's result goes there
    message_id: str | None = None  # the message whose button was pressed: the result replies to it
    job_id: str | None = None
    index: int | None = None  # the grid image, when the pressed job is a grid
    webapp: bool = False  # opened as a Telegram Mini App: the form must carry Telegram's initData
    nonce: str = ""  # editor links: spent once on submit
    expires: int = 0  # unix seconds
    lang: str = ""  # the user's reply language when the link was made (a catalog name); "": the page negotiates

    @property
    def requester(self) -> Requester:
        """The presser as the core knows them; the job's result goes to ``channel_id``."""
        platform = self.platform if self.platform in ("discord", "telegram") else "console"
        return Requester(
            platform,  # type: ignore[arg-type]  # narrowed just above
            self.user_id,
            self.name,
            guild_id=self.guild_id,
            channel_id=self.channel_id,
        )

    @property
    def user_key(self) -> str:
        return f"{self.platform}:{self.user_id}"


def _serializer(secret: str, purpose: Purpose) -> URLSafeSerializer:
    if not secret:
        raise LinkError("the web front door has no secret (IMPASTO_WEB_SECRET)", "web.link_no_secret")
    return URLSafeSerializer(secret, salt=f"impasto-web-{purpose}")


def sign(secret: str, grant: Pass, *, now: float | None = None) -> str:
    """The token for ``grant``; its expiry is set from the purpose's lifetime when it has none."""
    if not grant.expires:
        grant = replace(grant, expires=int(now if now is not None else time.time()) + LIFETIMES[grant.purpose])
    if grant.purpose == "edit" and not grant.nonce:
        grant = replace(grant, nonce=secrets.token_urlsafe(12))
    # Defaults are left out to keep links short; by identity, so a grid's image index 0 (== False) is kept.
    payload = {k: v for k, v in asdict(grant).items() if v is not None and v is not False and v != ""}
    return _serializer(secret, grant.purpose).dumps(payload)


def verify(secret: str, token: str, purpose: Purpose, *, now: float | None = None) -> Pass:
    """The grant a token carries; ``LinkError`` when it is forged, tampered with, for another page, or expired."""
    try:
        data = _serializer(secret, purpose).loads(token)
    except BadSignature:
        raise LinkError(
            "this link is not valid (it was changed or made for another page); ask the bot again", "web.link_invalid"
        ) from None
    try:
        grant = Pass(**data)
    except TypeError:
        raise LinkError("this link is not valid; ask the bot again", "web.link_broken") from None
    if grant.purpose != purpose:
        raise LinkError("this link is for another page; ask the bot again", "web.link_other_page", grant.lang)
    if grant.expires < (now if now is not None else time.time()):
        raise LinkError("this link has expired; press the button again for a fresh one", "web.link_expired", grant.lang)
    return grant


def _link(settings: WebLinkSettings, grant: Pass, now: float | None) -> str:
    """The page's URL with ``grant`` signed into its ``t`` parameter; ``LinkError`` when the front door is not set."""
    base, secret = settings.web_url, settings.web_secret_value
    if not base or not secret:
        raise LinkError("the web front door is not configured (IMPASTO_WEB_URL and IMPASTO_WEB_SECRET)")
    return f"{base.rstrip('/')}{PATHS[grant.purpose]}?{urlencode({'t': sign(secret, grant, now=now)})}"


def editor_link(
    settings: WebLinkSettings,
    who: Requester,
    job_id: str,
    index: int | None,
    source_message_id: str | None,
    *,
    webapp: bool = False,
    lang: str | None = None,
    now: float | None = None,
) -> str:
    """The region editor for ``job_id`` (image ``index`` of a grid, None for a single image), for ``who`` only.

    Called by an adapter when Vary (Region) is pressed: ``who`` is the presser (their channel is where the result
    goes), ``source_message_id`` the message whose button was pressed (the result replies to it). ``webapp``: the
    link opens as a Telegram Mini App (private chats), and the form must then carry Telegram's ``initData``.
    Every call gives a fresh, single-use link valid for 15 minutes. ``lang``: the presser's reply language (the
    page opens in it; every link function takes it).
    """
    grant = Pass(
        "edit",
        who.platform,
        who.user_id,
        who.display_name,
        guild_id=who.guild_id,
        channel_id=who.channel_id,
        message_id=source_message_id,
        job_id=job_id,
        index=index,
        webapp=webapp,
        lang=lang or "",
    )
    return _link(settings, grant, now)


def gallery_link(
    settings: WebLinkSettings, who: Requester, *, lang: str | None = None, now: float | None = None
) -> str:
    """``who``'s own gallery (stealth jobs included): send it privately (ephemeral, or a private message)."""
    return _link(settings, Pass("gallery", who.platform, who.user_id, who.display_name, lang=lang or ""), now)


def public_gallery_link(
    settings: WebLinkSettings, who: Requester, *, lang: str | None = None, now: float | None = None
) -> str:
    """The public gallery of the server ``who`` is in (their guild/group); refuses outside a server."""
    if who.guild_id is None:
        raise LinkError("the public gallery belongs to a server; ask for it in one")
    grant = Pass("public", who.platform, who.user_id, who.display_name, guild_id=who.guild_id, lang=lang or "")
    return _link(settings, grant, now)


def download_link(
    settings: WebLinkSettings,
    owner: tuple[str, str],
    job_id: str,
    index: int,
    *,
    lifetime_s: int | None = None,
    lang: str | None = None,
    now: float | None = None,
) -> str:
    """The full-resolution PNG of image ``index`` of ``job_id`` (0: a grid), for ``owner`` = (platform, user id).

    Delivery calls it when the PNG does not fit the chat and puts the link under the result; it opens for anyone
    holding it (the result was posted where they are) unless the job is stealth, when only a link made for its owner
    does. Not spent on use; it works for ``lifetime_s`` (default ``LIFETIMES["download"]``).
    """
    platform, user_id = owner
    start = int(now if now is not None else time.time())
    expires = start + (lifetime_s if lifetime_s is not None else LIFETIMES["download"])
    grant = Pass("download", platform, user_id, job_id=job_id, index=index, expires=expires, lang=lang or "")
    return _link(settings, grant, now)


def desk_link(settings: WebLinkSettings, who: Requester, *, lang: str | None = None, now: float | None = None) -> str:
    """The moderators' desk of ``who.guild_id``, for a moderator the bot has just checked (``/mod desk``)."""
    if who.guild_id is None:
        raise LinkError("the moderators' desk belongs to a server: ask for it there")
    grant = Pass("desk", who.platform, who.user_id, who.display_name, guild_id=who.guild_id, lang=lang or "")
    return _link(settings, grant, now)
