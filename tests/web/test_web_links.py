"""Signed links: who, where, which job; tampered, expired, cross-purpose links refused; Telegram initData."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import pytest

from impasto.bots.service.requester import Requester
from impasto.bots.web.links import LinkError, editor_link, gallery_link, public_gallery_link, verify
from impasto.bots.web.telegram_auth import InitDataError, sign_init_data, validate_init_data

ADA = Requester("discord", "100", "ada", guild_id="900", channel_id="55")
NOW = 1_800_000_000.0


@dataclass(frozen=True)
class Cfg:
    web_url: str | None = "https://impasto.example/"
    web_secret_value: str | None = "s3cret-for-tests"


def token_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["t"][0]


def test_editor_link_carries_who_where_and_what() -> None:
    url = editor_link(Cfg(), ADA, "job123456789", 2, "777", now=NOW)
    assert url.startswith("https://impasto.example/edit?t=")
    grant = verify("s3cret-for-tests", token_of(url), "edit", now=NOW + 60)
    assert (grant.platform, grant.user_id, grant.guild_id, grant.channel_id) == ("discord", "100", "900", "55")
    assert (grant.job_id, grant.index, grant.message_id) == ("job123456789", 2, "777")
    assert grant.requester == ADA
    assert grant.nonce
    assert grant.expires == int(NOW) + 15 * 60


def test_each_press_gives_a_fresh_link() -> None:
    first = verify("s3cret-for-tests", token_of(editor_link(Cfg(), ADA, "j", None, None, now=NOW)), "edit", now=NOW)
    second = verify("s3cret-for-tests", token_of(editor_link(Cfg(), ADA, "j", None, None, now=NOW)), "edit", now=NOW)
    assert first.nonce != second.nonce


def test_expired_link_is_refused() -> None:
    token = token_of(editor_link(Cfg(), ADA, "j", None, None, now=NOW))
    with pytest.raises(LinkError, match="expired"):
        verify("s3cret-for-tests", token, "edit", now=NOW + 15 * 60 + 1)


def test_tampered_link_is_refused() -> None:
    token = token_of(editor_link(Cfg(), ADA, "j", None, None, now=NOW))
    payload, sig = token.rsplit(".", 1)
    forged = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1] + "." + sig
    with pytest.raises(LinkError, match="not valid"):
        verify("s3cret-for-tests", forged, "edit", now=NOW)
    with pytest.raises(LinkError, match="not valid"):
        verify("another-secret", token, "edit", now=NOW)


def test_a_link_opens_only_its_own_page() -> None:
    token = token_of(gallery_link(Cfg(), ADA, now=NOW))
    assert verify("s3cret-for-tests", token, "gallery", now=NOW).user_id == "100"
    with pytest.raises(LinkError):
        verify("s3cret-for-tests", token, "edit", now=NOW)
    public = token_of(public_gallery_link(Cfg(), ADA, now=NOW))
    assert verify("s3cret-for-tests", public, "public", now=NOW).guild_id == "900"
    with pytest.raises(LinkError, match="server"):
        public_gallery_link(Cfg(), Requester("telegram", "1"), now=NOW)


def test_unconfigured_front_door_makes_no_links() -> None:
    with pytest.raises(LinkError, match="IMPASTO_WEB_URL"):
        editor_link(Cfg(web_url=None), ADA, "j", None, None)


BOT_TOKEN = "123456:ABC-test-token"


def init_data(user_id: int = 42, auth_date: float = NOW, token: str = BOT_TOKEN) -> str:
    user = json.dumps({"id": user_id, "first_name": "Ada", "username": "ada"}, separators=(",", ":"))
    return sign_init_data({"query_id": "AAE", "user": user, "auth_date": str(int(auth_date))}, token)


def test_init_data_validates_as_telegram_documents() -> None:
    user = validate_init_data(init_data(), BOT_TOKEN, now=NOW + 10)
    assert (user.user_id, user.first_name, user.username) == ("42", "Ada", "ada")


def test_init_data_refusals() -> None:
    with pytest.raises(InitDataError, match="does not check out"):
        validate_init_data(init_data(token="999:other"), BOT_TOKEN, now=NOW)
    with pytest.raises(InitDataError, match="does not check out"):
        validate_init_data(init_data().replace("42", "43"), BOT_TOKEN, now=NOW)
    with pytest.raises(InitDataError, match="too old"):
        validate_init_data(init_data(auth_date=NOW - 3600), BOT_TOKEN, now=NOW)
    with pytest.raises(InitDataError, match="not signed"):
        validate_init_data("user=%7B%7D&auth_date=1", BOT_TOKEN, now=NOW)
    with pytest.raises(InitDataError):
        validate_init_data("", BOT_TOKEN, now=time.time())
