"""Every result arrives on Telegram, whatever its size: the fake Bot API holds photos and documents to their limits;
the full PNG goes as a document where one takes it, else by a signed link from the web front door (byte for byte)."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fake_botapi import Call
from test_telegram_delivery import Asked, is_result, noise_png, of, queued_job
from tg_stack import TelegramStack, telegram_stack

from impasto.bots.service.result_forms import Limits
from impasto.bots.telegram.callback_data import DocumentButton, encode
from impasto.bots.web.app import WebDeps, build_app
from impasto.bots.web.guards import Guards, ReplyTargets
from impasto.bots.web.links import verify

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")]

SECRET = "s3cret"
PHOTO_LIMIT = 300_000  # a 512² noise PNG is about 790 kB: past this ...
DOCUMENT_LIMIT = 500_000  # ... and past this
LINK = re.compile(r'<a href="(https://impasto\.example/download\?t=[^"]+)">download</a>')


@dataclass(frozen=True)
class WebFrontDoor:
    web_url: str | None = "https://impasto.example"
    web_secret_value: str | None = SECRET


@dataclass
class Sized:
    stack: TelegramStack
    web: httpx.AsyncClient  # the web front door on the stack's core, in-process


@pytest.fixture
async def sized(tmp_path: Path) -> AsyncIterator[Sized]:
    async with telegram_stack(tmp_path) as stack:
        stack.web = WebFrontDoor()
        prefix = f"{stack.ns.prefix}web:"  # removed with the stack's other keys
        deps = WebDeps(
            stack.service, Guards(stack.redis, prefix=prefix), ReplyTargets(stack.redis, prefix=prefix), SECRET
        )
        transport = httpx.ASGITransport(app=build_app(deps))
        async with httpx.AsyncClient(transport=transport, base_url="https://impasto.example") as client:
            yield Sized(stack, client)


async def restart(stack: TelegramStack, limits: Limits | None) -> None:
    """The bot believing ``limits``, with its delivery core stopped: the test posts the end itself, once the stored
    grid is a large one."""
    stack.limits = limits
    await stack.stop_bot()
    await stack.start_bot()
    assert stack.deliverer_task is not None
    stack.deliverer_task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await stack.deliverer_task


async def large_result(stack: TelegramStack) -> tuple[Asked, bytes]:
    """A finished job whose stored grid is a 512² noise PNG, its end posted once."""
    job = await queued_job(stack)
    await stack.drain()
    grid = (await stack.service.job(job.job_id)).image(0)
    assert grid is not None
    full = noise_png(512)
    stack.images.path(grid.key).write_bytes(full)
    assert stack.delivery is not None
    assert await stack.delivery.deliver_end(job.job_id, paints_noise=False) is True
    return job, full


async def fetched(web: httpx.AsyncClient, url: str, job: Asked) -> bytes:
    grant = verify(SECRET, parse_qs(urlsplit(url).query)["t"][0], "download")
    assert (grant.platform, grant.user_id, grant.job_id, grant.index) == ("telegram", "42", job.job_id, 0)
    response = await web.get(url)
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    return response.content


def photos(stack: TelegramStack, job: Asked) -> list[Call]:
    return [c for c in stack.api.calls if of(job, "sendPhoto")(c)]


async def test_past_the_document_limit_the_full_png_is_a_signed_link(sized: Sized) -> None:
    stack = sized.stack
    stack.api.photo_limit, stack.api.document_limit = PHOTO_LIMIT, DOCUMENT_LIMIT
    await restart(stack, Limits(inline_bytes=PHOTO_LIMIT, document_bytes=DOCUMENT_LIMIT))
    job, full = await large_result(stack)
    [result] = photos(stack, job)  # the bot knew the limits: one upload, accepted
    assert is_result(job)(result)
    assert result.files["photo"].startswith(b"\xff\xd8")  # a JPEG for viewing
    assert len(result.files["photo"]) <= PHOTO_LIMIT
    assert "full resolution: 512×512 PNG" in result.params["caption"]
    found = LINK.search(result.params["caption"])
    assert found, result.params["caption"]
    assert await fetched(sized.web, found.group(1), job) == full  # byte for byte


async def test_a_document_where_it_fits_and_the_link_when_telegram_takes_less(sized: Sized) -> None:
    stack = sized.stack
    # The bot believes Telegram's own figures (10 MB photos, 50 MB documents); this server takes far less.
    stack.api.photo_limit, stack.api.document_limit = PHOTO_LIMIT, DOCUMENT_LIMIT
    await restart(stack, None)
    job, full = await large_result(stack)
    tried = photos(stack, job)
    assert tried[0].files["photo"] == full  # the PNG first: the bot believed it fits
    assert [is_result(job)(c) for c in tried] == [False] * (len(tried) - 1) + [True]  # refused, then the JPEG
    result = tried[-1]
    assert len(result.files["photo"]) <= PHOTO_LIMIT
    assert "press 📄 Full-res file" in result.params["caption"]  # a document takes it, as far as the bot knows
    assert "download</a>" not in result.params["caption"]

    # 📄: the document is refused as too large (HTTP 413) here, so the signed link goes instead, at once.
    mark = len(stack.api.calls)
    await stack.api.push(stack.api.callback(encode(DocumentButton(job.job_id)), result.result))
    [refused] = await stack.api.wait_method("sendDocument", after=mark)
    assert refused.result == {"error": 413}
    [linked] = await stack.api.wait_method("sendMessage", after=mark)
    assert "too large for a Telegram file" in linked.params["text"]
    [[button]] = linked.params["reply_markup"]["inline_keyboard"]
    assert await fetched(sized.web, button["url"], job) == full


async def test_the_full_png_as_a_document_where_it_fits(sized: Sized) -> None:
    stack = sized.stack
    stack.api.photo_limit = PHOTO_LIMIT
    await restart(stack, Limits(inline_bytes=PHOTO_LIMIT, document_bytes=10 * DOCUMENT_LIMIT))
    job, full = await large_result(stack)
    [result] = photos(stack, job)
    assert "press 📄 Full-res file" in result.params["caption"]
    mark = len(stack.api.calls)
    await stack.api.push(stack.api.callback(encode(DocumentButton(job.job_id)), result.result))
    [document] = await stack.api.wait_method("sendDocument", after=mark)
    assert document.files["document"] == full
    assert not [c for c in stack.api.calls[mark:] if c.method == "sendMessage"]
