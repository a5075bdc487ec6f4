"""Queue events → Telegram messages, through the real Redis stream (db 15) and the real PTB Bot over HTTP."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import random
import secrets
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from fake_botapi import TOKEN, FakeBotApi
from PIL import Image
from redis.asyncio import Redis
from tg_harness import TEST_REDIS_URL

from impasto.bots.telegram.app import build_application
from impasto.bots.telegram.callback_data import JobButton, decode
from impasto.bots.telegram.captions import CaptionInfo
from impasto.bots.telegram.delivery import Deliverer, ResultSent
from impasto.bots.telegram.routes import Route, Routes
from impasto.queue import events
from impasto.queue.actions import Action
from impasto.queue.keys import Namespace
from impasto.storage.images import ImageStore

# PTB's RetryAfter constructor itself reads the deprecated int ``retry_after``.
pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")


def png(color: tuple[int, int, int], size: int = 64) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), color).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = Redis.from_url(TEST_REDIS_URL)
    yield client
    await client.aclose()


class Rig:
    def __init__(self, api: FakeBotApi, redis: Redis, store: ImageStore, group: str) -> None:
        self.api, self.redis, self.store, self.group = api, redis, store, group
        self.application = build_application(TOKEN, api.url, read_timeout_s=5)
        self.results: list[ResultSent] = []
        # A namespace of our own: db 15 (and its event streams) is shared with other test sessions.
        self.ns = Namespace(f"impasto-test-{secrets.token_hex(4)}:")
        self.routes = Routes(redis, ns=self.ns)

        async def remember(sent: ResultSent) -> None:
            self.results.append(sent)

        self.deliverer = Deliverer(
            self.application.bot,
            redis,
            store,
            edit_interval_s=0.001,
            action_interval_s=0.001,
            wait_inline_s=0,
            group=group,
            routes=self.routes,
            on_result=remember,
        )

    async def new_route(self, job_id: str, *, prompt: str = "a cat", chat_id: int = 42) -> Route:
        progress = await self.application.bot.send_message(chat_id, "Waiting to start")
        route = Route(
            job_id,
            chat_id,
            CaptionInfo(job_id, prompt, "42", "Alice", "fast"),
            reply_to=7,
            progress_message_id=progress.message_id,
        )
        await self.routes.save(route)
        return route


@pytest.fixture
async def rig(api: FakeBotApi, redis: Redis, tmp_path: Path) -> AsyncIterator[Rig]:
    group = f"telegram-test-{secrets.token_hex(4)}"
    rig = Rig(api, redis, ImageStore(tmp_path / "images"), group)
    await events.ensure_group(redis, group, ns=rig.ns)
    await rig.application.initialize()
    task = asyncio.create_task(rig.deliverer.run(consumer="t1", redeliver_every_s=0.1))
    yield rig
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await rig.application.shutdown()
    async for key in redis.scan_iter(match=rig.ns.prefix + "*"):
        await redis.delete(key)


async def until(condition: Callable[[], object], timeout_s: float = 10.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():  # noqa: ASYNC110 - polls plain state the deliverer sets from another task
            await asyncio.sleep(0.02)


def job_id() -> str:
    return secrets.token_hex(8)


async def test_progress_then_grid_with_buttons(rig: Rig) -> None:
    api, job = rig.api, job_id()
    route = await rig.new_route(job, prompt='<a href="https://evil.example">x</a> & co')
    await events.publish(rig.redis, ns=rig.ns, event=events.Queued(job_id=job, position=2))
    [edit] = await api.wait_method("editMessageText")
    assert "queue position 2" in edit.params["text"]
    assert edit.params["message_id"] == route.progress_message_id
    preview = base64.b64encode(png((0, 0, 255), 16)).decode()
    await events.publish(
        rig.redis, ns=rig.ns, event=events.Progress(job_id=job, step=5, total=10, preview_png_b64=preview)
    )
    [progress_photo] = await api.wait_method("sendPhoto")
    assert "50%" in progress_photo.params["caption"]
    assert api.sent("sendChatAction")[0].params["action"] == "upload_photo"
    await events.publish(
        rig.redis, ns=rig.ns, event=events.Progress(job_id=job, step=9, total=10, preview_png_b64=preview)
    )
    [media] = await api.wait_method("editMessageMedia")
    assert "90%" in media.params["media"]["caption"]

    grid = rig.store.put(png((255, 0, 0)))
    singles = [rig.store.put(png((i, 0, 0))) for i in range(4)]
    await events.publish_final(
        rig.redis, ns=rig.ns, event=events.Done(job_id=job, image_keys=singles, grid_key=grid, seed=5)
    )
    photos = await api.wait_method("sendPhoto", count=2)
    result = photos[1]
    assert result.files["photo"] == rig.store.get(grid)
    caption = result.params["caption"]
    assert "evil.example" in caption
    assert '<a href="https://evil' not in caption
    rows = result.params["reply_markup"]["inline_keyboard"]
    assert [b["text"] for b in rows[0]] == ["U1", "U2", "U3", "U4", "🔄"]
    assert decode(rows[1][1]["callback_data"]) == JobButton(Action.VARIATION, job, 2)
    assert result.params["reply_parameters"]["message_id"] == 7
    await api.wait_method("deleteMessage", count=2)  # the text progress message, then the photo one
    await until(lambda: rig.results)
    assert rig.results == [ResultSent(job, 42, result.result["message_id"])]


async def test_single_image_gets_single_keyboard(rig: Rig) -> None:
    job = job_id()
    await rig.new_route(job)
    key = rig.store.put(png((1, 2, 3)))
    await events.publish_final(rig.redis, ns=rig.ns, event=events.Done(job_id=job, image_keys=[key], paints_noise=True))
    [result] = await rig.api.wait_method("sendPhoto")
    labels = [b["text"] for row in result.params["reply_markup"]["inline_keyboard"] for b in row]
    assert "Upscale (Subtle)" in labels
    assert "⬅️" in labels
    assert "❤️" in labels
    assert "noise" in result.params["caption"]


async def test_rate_limited_result_is_redelivered_not_lost(rig: Rig) -> None:
    api, job = rig.api, job_id()
    await rig.new_route(job)
    key = rig.store.put(png((9, 9, 9)))
    api.rate_limit("sendPhoto", retry_after=1)
    await events.publish_final(rig.redis, ns=rig.ns, event=events.Done(job_id=job, image_keys=[key]))
    attempts = await api.wait_method("sendPhoto", count=2)
    assert attempts[0].result == {"error": 429}
    assert attempts[1].result["photo"]
    await until(lambda: rig.results)
    assert len(rig.results) == 1
    # Handling the same completion again (a duplicate event) posts nothing twice.
    assert await rig.deliverer.deliver_result(events.Done(job_id=job, image_keys=[key])) is None
    assert len(api.sent("sendPhoto")) == 2


async def test_failure_is_told_in_the_chat(rig: Rig) -> None:
    job = job_id()
    route = await rig.new_route(job)
    await events.publish_final(
        rig.redis, ns=rig.ns, event=events.Failed(job_id=job, message="The GPU ran out of memory <oops>")
    )
    edit = (await rig.api.wait_method("editMessageText"))[-1]
    assert edit.params["message_id"] == route.progress_message_id
    assert "&lt;oops&gt;" in edit.params["text"]


async def test_events_of_other_platforms_are_ignored(rig: Rig) -> None:
    job = job_id()
    key = rig.store.put(png((9, 9, 1)))
    await events.publish_final(rig.redis, ns=rig.ns, event=events.Done(job_id=job, image_keys=[key]))
    mine = job_id()
    await rig.new_route(mine)
    await events.publish_final(rig.redis, ns=rig.ns, event=events.Cancelled(job_id=mine))
    await rig.api.wait_method("editMessageText")
    assert rig.api.sent("sendPhoto") == []


async def test_a_result_that_beats_its_route_is_still_posted(rig: Rig) -> None:
    job = job_id()
    key = rig.store.put(png((3, 3, 3)))
    await events.publish_final(rig.redis, ns=rig.ns, event=events.Done(job_id=job, image_keys=[key]))
    await asyncio.sleep(0.3)  # the worker was faster than the handler that saves the route
    await rig.new_route(job)
    [result] = await rig.api.wait_method("sendPhoto", timeout_s=10)
    assert result.files["photo"] == rig.store.get(key)


async def test_a_photo_telegram_refuses_goes_as_a_file_with_its_buttons(rig: Rig) -> None:
    job = job_id()
    await rig.new_route(job)
    key = rig.store.put(png((4, 4, 4)))
    rig.api.fail("sendPhoto", 400, "Bad Request: PHOTO_INVALID_DIMENSIONS")
    await events.publish_final(rig.redis, ns=rig.ns, event=events.Done(job_id=job, image_keys=[key]))
    [document] = await rig.api.wait_method("sendDocument")
    assert document.files["document"] == rig.store.get(key)
    assert "Upscale (Subtle)" in str(document.params["reply_markup"])


async def test_a_group_that_became_a_supergroup_still_gets_its_result(rig: Rig) -> None:
    job = job_id()
    await rig.new_route(job, chat_id=-5001)
    key = rig.store.put(png((5, 5, 5)))
    rig.api.fail("sendPhoto", 400, "Bad Request: group chat was upgraded", {"migrate_to_chat_id": -1005001})
    await events.publish_final(rig.redis, ns=rig.ns, event=events.Done(job_id=job, image_keys=[key]))
    [_refused, posted] = await rig.api.wait_method("sendPhoto", count=2)
    assert posted.chat_id == -1005001


def noise_png(side: int) -> bytes:
    """Noise, as the tiny models paint: the worst case for every codec (a 512² PNG is about 790 kB)."""
    image = Image.frombytes("RGB", (side, side), random.Random(side).randbytes(side * side * 3))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


@pytest.mark.parametrize(
    ("status", "description"),
    [
        (400, "Bad Request: file is too big"),
        (400, "Bad Request: PHOTO_SAVE_FILE_INVALID"),
        (413, "Request Entity Too Large"),  # python-telegram-bot raises this one as a NetworkError
    ],
)
async def test_a_result_refused_as_too_large_arrives_in_a_smaller_form(rig: Rig, status: int, description: str) -> None:
    job = job_id()
    await rig.new_route(job)
    full = noise_png(512)
    key = rig.store.put(full)
    # The server takes less than the bot believes: the PNG and the next form are refused, each in Telegram's words.
    rig.api.fail("sendPhoto", status, description)
    rig.api.fail("sendPhoto", status, description)
    await events.publish_final(rig.redis, ns=rig.ns, event=events.Done(job_id=job, image_keys=[key]))
    [first, second, posted] = await rig.api.wait_method("sendPhoto", count=3, timeout_s=30)
    assert first.files["photo"] == full  # the PNG was tried first
    assert len(second.files["photo"]) < len(full)
    assert len(posted.files["photo"]) < len(second.files["photo"])
    assert posted.files["photo"].startswith(b"\xff\xd8")  # a JPEG for viewing
    assert "full resolution: 512×512 PNG" in posted.params["caption"]
    assert "📄 Full-res file" in posted.params["caption"]  # the full PNG is one press away
    assert rig.store.get(key) == full  # kept, byte for byte
