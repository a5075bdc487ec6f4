"""The full-resolution PNG by a signed download link: byte for byte, for days, stealth jobs to their owner only."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from itsdangerous import Signer
from sqlalchemy import update
from web_helpers import SECRET, Cfg, Site

from impasto.bots.service.requester import Requester
from impasto.bots.web.links import LIFETIMES, Pass, download_link, gallery_link, sign, verify
from impasto.storage import moderation as mod
from impasto.storage.models import FLAGGED_IMAGE, Image

ADA = Requester("discord", "100", "ada", guild_id="900", channel_id="55")
BOB = Requester("discord", "200", "bob", guild_id="900", channel_id="55")


def token_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["t"][0]


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def test_a_download_link_names_the_job_and_image_and_lasts_days() -> None:
    now = 1_800_000_000.0
    url = download_link(Cfg("https://impasto.example"), ("discord", "100"), "job123456789", 0, now=now)
    assert url.startswith("https://impasto.example/download?t=")
    grant = verify(SECRET, token_of(url), "download", now=now + 6 * 24 * 3600)
    # Index 0 (a grid) survives signing: the payload drops defaults by identity, not by truth.
    assert (grant.platform, grant.user_id, grant.job_id, grant.index) == ("discord", "100", "job123456789", 0)
    assert grant.expires == int(now) + LIFETIMES["download"] == int(now) + 7 * 24 * 3600
    short = download_link(Cfg("https://impasto.example"), ("discord", "100"), "j", 1, lifetime_s=60, now=now)
    assert verify(SECRET, token_of(short), "download", now=now).expires == int(now) + 60


async def test_the_png_arrives_byte_for_byte_and_the_link_is_not_spent(site: Site) -> None:
    job = await site.finished(ADA, "a lighthouse", "dl-1")
    grid = job.image(0)
    assert grid is not None
    url = download_link(site.cfg, (job.platform, job.user_id), job.job_id, 0)
    async with httpx.AsyncClient(base_url=site.base_url) as client:
        for _ in range(2):  # not spent on use
            response = await client.get(path_of(url))
            assert response.status_code == 200
            assert response.content == site.store.get(grid.key)
            assert response.headers["content-type"] == "image/png"
            disposition = response.headers["content-disposition"]
            assert disposition.startswith("attachment;")
            assert f'filename="impasto_{job.job_id}_0.png"' in disposition
        single = await client.get(path_of(download_link(site.cfg, ("discord", "100"), job.job_id, 3)))
        image3 = job.image(3)
        assert image3 is not None
        assert single.content == site.store.get(image3.key)
        # A link made for someone else opens a public job too: the result was posted where they are.
        bobs = await client.get(path_of(download_link(site.cfg, ("discord", "200"), job.job_id, 0)))
        assert bobs.status_code == 200


async def test_stealth_jobs_only_through_their_owners_link(site: Site) -> None:
    await site.service.update_settings(ADA, visibility="stealth")
    job = await site.finished(ADA, "a hidden cove", "dl-stealth")
    async with httpx.AsyncClient(base_url=site.base_url) as client:
        own = await client.get(path_of(download_link(site.cfg, ("discord", "100"), job.job_id, 0)))
        assert own.status_code == 200
        for owner in (("discord", "200"), ("telegram", "100")):
            other = await client.get(path_of(download_link(site.cfg, owner, job.job_id, 0)))
            assert other.status_code == 404
            assert "not one this link may download" in other.text
            assert other.headers["content-type"].startswith("text/html")


async def test_refused_download_links(site: Site) -> None:
    job = await site.finished(ADA, "a harbour", "dl-refused")
    good = token_of(download_link(site.cfg, ("discord", "100"), job.job_id, 0))
    grant = verify(SECRET, good, "download")
    expired = sign(SECRET, replace(grant, expires=int(time.time()) - 1))
    # Whatever a link names, the file is the store key SQL holds for that job: no path can be named.
    outside = sign(SECRET, replace(grant, job_id="../../../etc/passwd"))
    no_image = sign(SECRET, replace(grant, index=9))
    gallery = sign(SECRET, Pass("gallery", "discord", "100"))
    async with httpx.AsyncClient(base_url=site.base_url) as client:
        cases = {
            good[:-2] + ("AA" if not good.endswith("AA") else "BB"): (403, "not valid"),
            expired: (403, "expired"),
            outside: (404, "no such image"),
            no_image: (404, "no such image"),
            gallery: (403, "not valid"),
        }
        for token, (status, line) in cases.items():
            response = await client.get("/download", params={"t": token})
            assert response.status_code == status, token
            assert line in response.text
        assert (await client.get("/download")).status_code == 400


async def test_downloads_are_rate_limited_per_image_not_from_the_owners_budget(site: Site) -> None:
    job = await site.finished(ADA, "a busy channel", "dl-busy")
    url = path_of(download_link(site.cfg, ("discord", "100"), job.job_id, 0))
    async with httpx.AsyncClient(base_url=site.base_url) as client:
        statuses = [(await client.get(url)).status_code for _ in range(31)]
        assert statuses == [200] * 30 + [429]  # Guards' 30 a minute
        # The owner's own pages still open: the downloads were counted on the image, not on them.
        gallery = await client.get(path_of(gallery_link(site.cfg, ADA)))
        assert gallery.status_code == 200


class FailingBucket:
    """A bucket that does not answer: every call an ``OSError``, as ``storage.s3.S3Bucket`` raises them."""

    def upload(self, key: str, data: bytes) -> None:
        raise OSError("bucket unreachable")

    def download(self, key: str) -> bytes | None:
        raise OSError("bucket unreachable")

    def exists(self, key: str) -> bool:
        raise OSError("bucket unreachable")


async def test_a_failing_image_store_is_a_one_line_503_logged_once(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    """The picture is not on this host and the bucket fails: the one-line refusal with a 503 (try again), not a bare
    500, and the cause in the log once."""
    job = await site.finished(ADA, "a far lighthouse", "dl-bucket")
    grid = job.image(0)
    assert grid is not None
    site.store.path(grid.key).unlink()  # only the bucket has it now
    site.store.remote = FailingBucket()
    expires = int(time.time()) + 600
    sig = Signer(SECRET, salt="impasto-web-image").get_signature(f"{grid.key}:{expires}").decode()
    async with httpx.AsyncClient(base_url=site.base_url) as client:
        with caplog.at_level(logging.WARNING, logger="impasto.web"):
            download = await client.get(path_of(download_link(site.cfg, ("discord", "100"), job.job_id, 0)))
            image = await client.get(f"/img/{grid.key}?e={expires}&s={sig}")
    assert download.status_code == 503
    assert download.headers["content-type"].startswith("text/html")
    assert "the picture store is not answering" in download.text
    assert image.status_code == 503
    assert image.text == "the picture store is not answering; try again in a minute"
    causes = [r.getMessage() for r in caplog.records if "bucket unreachable" in r.getMessage()]
    assert len(causes) == 2  # once per request
    assert job.job_id in causes[0]
    assert grid.key in causes[1]


async def flag(site: Site, job_id: str) -> None:
    async with site.service.sessions() as session, session.begin():
        await session.execute(update(Image).where(Image.job_id == job_id).values(moderation=FLAGGED_IMAGE))


async def server_chooses(site: Site, **settings: str) -> None:
    async with site.service.sessions() as session, session.begin():
        guild = await mod.guild_id_for(session, "discord", "900")
        await mod.update_settings(session, guild, **settings)  # type: ignore[arg-type]


async def test_a_flagged_result_is_not_served_past_its_servers_moderation(site: Site) -> None:
    """The web is no NSFW place and cannot put a picture behind a spoiler: a flagged result is served only where its
    server delivers such pictures as they are outside NSFW channels (or approved one it holds); otherwise the one
    line (held for review, or flagged), for the download and for the page's image alike."""
    job = await site.finished(ADA, "a flagged lighthouse", "dl-flagged")
    grid = job.image(0)
    assert grid is not None
    await flag(site, job.job_id)
    expires = int(time.time()) + 600
    sig = Signer(SECRET, salt="impasto-web-image").get_signature(f"{grid.key}:{expires}").decode()
    async with httpx.AsyncClient(base_url=site.base_url) as client:

        async def both() -> tuple[httpx.Response, httpx.Response]:
            download = await client.get(path_of(download_link(site.cfg, ("discord", "100"), job.job_id, 0)))
            return download, await client.get(f"/img/{grid.key}?e={expires}&s={sig}")

        for setting in ("spoiler", "remove", "hold"):
            await server_chooses(site, flagged_output=setting)
            for response in await both():
                assert response.status_code == 403
                assert "flagged by the image check" in response.text
        async with site.service.sessions() as session, session.begin():
            await mod.hold(session, job_id=job.job_id, user_id=1, guild_id=None, channel_id=None, nsfw_score=1.0)
        for response in await both():
            assert response.status_code == 403
            assert "held for review" in response.text
        await flag_passed(site, job.job_id)
        for response in await both():
            assert response.status_code == 200
            assert response.content == site.store.get(grid.key)


async def flag_passed(site: Site, job_id: str) -> None:
    async with site.service.sessions() as session, session.begin():
        await session.execute(update(Image).where(Image.job_id == job_id).values(moderation=None))
