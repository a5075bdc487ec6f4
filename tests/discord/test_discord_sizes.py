"""Every result arrives, whatever its size: the fake Discord holds each destination to its own upload limit (a normal
server, a boosted one, a DM; and a limit lowered below what its interactions say), and the full PNG is one signed
download link away, byte for byte, from the web front door. /history and /public hand out the galleries' links."""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from discord_stack import ServiceStack
from fake_discord import ALICE, CHANNEL_ID, DM_CHANNEL_ID, GUILD_ID, FakeDiscord
from PIL import Image
from test_discord_flows import NoiseRenderer, WebFrontDoor, imagine_grid, shown

from impasto.bots.discord.app import ImpastoBot
from impasto.bots.discord.surface import with_line
from impasto.bots.service.views import JobView
from impasto.bots.web.app import WebDeps, build_app
from impasto.bots.web.guards import Guards, ReplyTargets
from impasto.bots.web.links import verify

Json = dict[str, Any]
WEB = WebFrontDoor()
LIMIT = 300_000  # a noise grid's PNG is about 800 kB: past this, below a boosted server's 3 MB
FULL_LINE = re.compile(
    r"full resolution: 512×512 PNG, [\d.]+ [kM]B — \[download\]\(<(https://impasto\.example/download\?t=[^>]+)>\)"
)


@pytest.fixture
async def web(stack: ServiceStack) -> AsyncIterator[httpx.AsyncClient]:
    """The web front door on the test's core, spoken to in-process (its Redis keys under the stack's namespace)."""
    prefix = f"{stack.ns.prefix}web:"
    assert WEB.web_secret_value is not None
    deps = WebDeps(
        stack.service, Guards(stack.pool, prefix=prefix), ReplyTargets(stack.pool, prefix=prefix), WEB.web_secret_value
    )
    transport = httpx.ASGITransport(app=build_app(deps))
    async with httpx.AsyncClient(transport=transport, base_url="https://impasto.example") as client:
        yield client


def uploads(fake: FakeDiscord, job_id: str) -> list[bytes]:
    """Every upload of the job's result the bot tried, in order (refused ones included)."""
    return [data for r in fake.requests for name, data in r.files if name.startswith(f"impasto_{job_id}.")]


async def full_png_by_link(web: httpx.AsyncClient, stack: ServiceStack, message: Json, job: JobView) -> None:
    """The caption names the full PNG and links it; the link gives the stored grid PNG byte for byte."""
    found = FULL_LINE.search(message["content"])
    assert found, message["content"]
    url = found.group(1)
    grant = verify(WEB.web_secret_value or "", parse_qs(urlsplit(url).query)["t"][0], "download")
    assert (grant.platform, grant.user_id, grant.job_id, grant.index) == ("discord", ALICE, job.job_id, 0)
    response = await web.get(url)
    assert response.status_code == 200
    stored = job.image(0)
    assert stored is not None
    assert response.content == stack.images.get(stored.key)
    assert response.headers["content-type"] == "image/png"
    assert response.headers["content-disposition"].startswith("attachment;")


def posted_once(fake: FakeDiscord, job: JobView, message: Json) -> None:
    """One message shows the result, with one picture and its buttons: nothing was posted twice."""
    with_picture = [
        m
        for m in fake.messages.values()
        if any(a["filename"].startswith(f"impasto_{job.job_id}.") for a in m["attachments"])
    ]
    assert [m["id"] for m in with_picture] == [message["id"]]
    assert len(message["attachments"]) == 1
    assert fake.button(message, "U1")


async def test_a_normal_server_gets_a_viewable_image_and_the_full_png_by_link(
    fake: FakeDiscord, start_bot: Callable[..., Awaitable[ImpastoBot]], stack: ServiceStack, web: httpx.AsyncClient
) -> None:
    stack.renderer_factory = lambda: NoiseRenderer(steps=1)
    fake.channel_limits[CHANNEL_ID] = LIMIT  # what the channel's interactions say, and what Discord holds it to
    await start_bot(web=WEB)
    grid = await imagine_grid(fake, stack, "a normal server")
    job = await shown(fake, stack, grid)
    viewable = fake.attachment_bytes(grid)
    assert viewable.startswith(b"\xff\xd8")  # a JPEG for viewing
    # The bot believed the interaction's figure: it sent the JPEG first, no upload was refused.
    assert uploads(fake, job.job_id) == [viewable]
    assert len(viewable) <= LIMIT
    posted_once(fake, job, grid)
    await full_png_by_link(web, stack, grid, job)


async def test_a_boosted_server_takes_the_png_itself(
    fake: FakeDiscord, start_bot: Callable[..., Awaitable[ImpastoBot]], stack: ServiceStack
) -> None:
    # A 2048² noise grid: a PNG of about 12.6 MB, past the 10 MiB discord.py reckons for a guild without boosts.
    stack.renderer_factory = lambda: NoiseRenderer(steps=1, side=1024)
    fake.channel_limits[CHANNEL_ID] = 50 * 1024 * 1024  # a boosted server: its interactions say 50 MiB
    await start_bot(web=WEB)
    grid = await imagine_grid(fake, stack, "a boosted server")
    job = await shown(fake, stack, grid)
    stored = job.image(0)
    assert stored is not None
    png = stack.images.get(stored.key)
    assert len(png) > 10 * 1024 * 1024  # what a server without boosts could not take
    assert fake.attachment_bytes(grid) == png
    assert uploads(fake, job.job_id) == [png]
    assert "full resolution" not in grid["content"]
    posted_once(fake, job, grid)


async def test_a_dm_gets_a_viewable_image_and_the_full_png_by_link(
    fake: FakeDiscord, start_bot: Callable[..., Awaitable[ImpastoBot]], stack: ServiceStack, web: httpx.AsyncClient
) -> None:
    stack.renderer_factory = lambda: NoiseRenderer(steps=1)
    fake.channel_limits[DM_CHANNEL_ID] = LIMIT
    await start_bot(web=WEB)
    grid = await imagine_grid(fake, stack, "a direct message", dm=True)
    assert grid["channel_id"] == DM_CHANNEL_ID
    job = await shown(fake, stack, grid)
    viewable = fake.attachment_bytes(grid)
    assert uploads(fake, job.job_id) == [viewable]  # a DM's own figure, not a server's
    assert len(viewable) <= LIMIT
    with Image.open(io.BytesIO(viewable)) as picture:
        assert picture.format == "JPEG"
    posted_once(fake, job, grid)
    await full_png_by_link(web, stack, grid, job)


async def test_a_limit_lowered_below_what_discord_said_falls_back_once(
    fake: FakeDiscord, start_bot: Callable[..., Awaitable[ImpastoBot]], stack: ServiceStack, web: httpx.AsyncClient
) -> None:
    stack.renderer_factory = lambda: NoiseRenderer(steps=1)
    fake.upload_limit = LIMIT  # the interactions say 25 MiB; Discord refuses past 300 kB (a server lost its boost)
    await start_bot(web=WEB)
    grid = await imagine_grid(fake, stack, "a lost boost")
    job = await shown(fake, stack, grid)
    tried = uploads(fake, job.job_id)
    assert tried[0].startswith(b"\x89PNG")  # the PNG first, as the bot believed it fits
    assert all(len(data) > LIMIT for data in tried[:-1])  # each refused with 413 / 40005 ...
    assert [len(d) for d in tried] == sorted((len(d) for d in tried), reverse=True)  # ... then a smaller form
    assert tried[-1] == fake.attachment_bytes(grid)
    assert len(tried[-1]) <= LIMIT
    posted_once(fake, job, grid)
    await full_png_by_link(web, stack, grid, job)


async def test_history_and_public_link_the_galleries(
    fake: FakeDiscord, start_bot: Callable[..., Awaitable[ImpastoBot]], stack: ServiceStack, web: httpx.AsyncClient
) -> None:
    await start_bot(web=WEB)
    grid = await imagine_grid(fake, stack, "a gallery piece")
    job = await shown(fake, stack, grid)

    record = await fake.slash("history")
    answer = await fake.wait_message(lambda m: m["id"] == record.original_id and "gallery" in m["content"])
    assert answer["flags"] & 64  # for the user alone: the gallery shows their stealth jobs
    assert job.job_id in answer["content"]
    url = re.search(r"\[Your gallery\]\(<([^>]+)>\)", answer["content"])
    assert url, answer["content"]
    grant = verify(WEB.web_secret_value or "", parse_qs(urlsplit(url.group(1)).query)["t"][0], "gallery")
    assert (grant.platform, grant.user_id) == ("discord", ALICE)
    page = await web.get(url.group(1))
    assert page.status_code == 200
    assert "a gallery piece" in page.text

    record = await fake.slash("public")
    answer = await fake.wait_message(lambda m: m["id"] == record.original_id and "public gallery" in m["content"])
    url = re.search(r"\[This server's public gallery\]\(<([^>]+)>\)", answer["content"])
    assert url, answer["content"]
    grant = verify(WEB.web_secret_value or "", parse_qs(urlsplit(url.group(1)).query)["t"][0], "public")
    assert (grant.platform, grant.guild_id) == ("discord", GUILD_ID)
    page = await web.get(url.group(1))
    assert page.status_code == 200
    assert "a gallery piece" in page.text

    # In a DM there is no server: /public answers without a gallery link.
    record = await fake.slash("public", dm=True)
    answer = await fake.wait_message(lambda m: m["id"] == record.original_id and "Public mode" in m["content"])
    assert "gallery](" not in answer["content"]


def test_the_full_resolution_line_survives_a_long_prompt() -> None:
    line = (
        "full resolution: 4096×4096 PNG, 31.0 MB — [download](<https://impasto.example/download?t=" + "x" * 200 + ">)"
    )
    long = "**" + "a very long prompt " * 100 + "** - <@1> (fast)"
    text = with_line(long, line)
    assert len(text) <= 2000
    assert text.endswith("\n-# " + line)
    assert with_line("short", "") == "short"
    assert with_line("short", line) == "short\n-# " + line
