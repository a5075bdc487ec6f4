"""Image prompt links are downloaded into the store before a job is queued (a real local HTTP server)."""

from __future__ import annotations

import io
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from PIL import Image
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from impasto.bots.service.errors import InvalidRequest
from impasto.bots.service.fetch import FetchError, http_fetcher, image_extension
from impasto.bots.service.jobs import JobService
from impasto.bots.service.requester import Requester
from impasto.bots.service.views import QueuedRender
from impasto.engine.registry import load_registry
from impasto.queue.actions import Action
from impasto.storage.images import ImageStore
from impasto.storage.lifecycle import NewImage, claim_job, complete_job
from impasto.storage.plans import load_plans

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
ADA = Requester("telegram", "7", "ada")


def real_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), "teal").save(buffer, "PNG")
    return buffer.getvalue()


class Bucket:
    """A remote store (``storage/s3.py``'s seat) that records which thread called it: a bucket is network I/O."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.threads: list[int] = []

    def upload(self, key: str, data: bytes) -> None:
        self.threads.append(threading.get_ident())
        self.objects[key] = data

    def download(self, key: str) -> bytes | None:
        self.threads.append(threading.get_ident())
        return self.objects.get(key)

    def exists(self, key: str) -> bool:
        self.threads.append(threading.get_ident())
        return key in self.objects

    def remove(self, key: str) -> bool:
        self.threads.append(threading.get_ident())
        return self.objects.pop(key, None) is not None


@pytest.fixture
async def image_server() -> AsyncIterator[str]:
    async def png(_: web.Request) -> web.Response:
        return web.Response(body=PNG, content_type="image/png")

    async def text(_: web.Request) -> web.Response:
        return web.Response(text="<html>not an image</html>")

    async def big(_: web.Request) -> web.Response:
        return web.Response(body=PNG + b"\x00" * 4096, content_type="image/png")

    async def picture(_: web.Request) -> web.Response:
        return web.Response(body=real_png(), content_type="image/png")

    app = web.Application()
    app.router.add_get("/a.png", png)
    app.router.add_get("/picture.png", picture)
    app.router.add_get("/page.png", text)
    app.router.add_get("/big.png", big)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.fixture
def service(sessions: async_sessionmaker[AsyncSession], tmp_path: Path) -> JobService:
    async def enqueue(_: QueuedRender) -> None:
        return None

    return JobService(
        sessions,
        ImageStore(tmp_path / "images"),
        load_registry(),
        load_plans(),
        enqueue,
        fetch_image=http_fetcher(max_bytes=1024, allow_hosts="127.0.0.1"),  # the server is local
    )


def test_image_types_are_sniffed() -> None:
    assert image_extension(PNG) == "png"
    assert image_extension(b"\xff\xd8\xff\xe0rest") == "jpg"
    assert image_extension(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "webp"
    with pytest.raises(FetchError):
        image_extension(b"<html>")


async def test_links_become_store_keys(service: JobService, image_server: str) -> None:
    url = f"{image_server}/a.png"
    (ticket,) = await service.imagine(ADA, "a cat", image_urls=[url, url], idempotency_key="t1")
    job = await service.job(ticket.job_id)
    key = service.images.put(PNG)
    assert list(job.params["image_prompts"]) == [key, key]
    assert list(job.params["image_prompt_urls"]) == [url, url]

    for path, reason in (("/page.png", "is not a PNG"), ("/big.png", "larger than"), ("/gone.png", "HTTP 404")):
        with pytest.raises(InvalidRequest, match=reason):
            await service.imagine(ADA, "a cat", image_urls=[image_server + path], idempotency_key=f"t-{path}")


async def test_vary_region_needs_a_mask(service: JobService, sessions: async_sessionmaker[AsyncSession]) -> None:
    (ticket,) = await service.imagine(ADA, "a cat", idempotency_key="v1")
    async with sessions() as session, session.begin():
        await claim_job(session, ticket.job_id, worker="w")
        await complete_job(session, ticket.job_id, images=[NewImage(1, service.images.put(PNG), 8, 8)], gpu_seconds=1.0)
    with pytest.raises(InvalidRequest, match="Vary \\(Region\\) needs"):
        await service.press(ADA, ticket.job_id, Action.VARY_REGION, idempotency_key="v2")
    mask = service.images.put(b"mask")
    result = await service.press(ADA, ticket.job_id, Action.VARY_REGION, idempotency_key="v3", mask_key=mask)
    async with sessions() as session, session.begin():
        claimed = await claim_job(session, result.view.job_id, worker="w")
    assert claimed is not None
    assert claimed.input_image_keys == (service.images.put(PNG), mask)


async def test_links_are_stored_off_the_event_loop(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path, image_server: str
) -> None:
    """With a bucket behind the store, storing a link's copy is network I/O: it runs in a thread, never on the bot's
    event loop (which would stall every other user and the platform's heartbeat while the bucket answers)."""
    bucket = Bucket()

    async def enqueue(_: QueuedRender) -> None:
        return None

    service = JobService(
        sessions,
        ImageStore(tmp_path / "images", remote=bucket),
        load_registry(),
        load_plans(),
        enqueue,
        fetch_image=http_fetcher(max_bytes=1024, allow_hosts="127.0.0.1"),
    )
    loop_thread = threading.get_ident()
    await service.imagine(ADA, "a cat", image_urls=[f"{image_server}/a.png"], idempotency_key="b1")
    assert bucket.objects
    assert bucket.threads
    assert loop_thread not in bucket.threads
    bucket.threads.clear()
    with pytest.raises(InvalidRequest, match="no captioner"):  # the shipped registry has none: stored, then refused
        await service.describe(ADA, idempotency_key="b2", link=f"{image_server}/picture.png")
    assert len(bucket.objects) == 2
    assert bucket.threads
    assert loop_thread not in bucket.threads
