"""Job events → Telegram messages through the delivery core and ``TelegramSurface``: the real job service on SQLite,
the real queue and worker (no-op renderer), the real event stream (Redis db 15, a namespace of our own) and the real
PTB Bot over HTTP against the fake Bot API. Every wait names its own job (a word of its prompt)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import random
import secrets
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import NamedTuple

import pytest
from fake_botapi import Call
from PIL import Image
from prometheus_client import REGISTRY
from tg_stack import TelegramStack, telegram_stack

from impasto.bots.service.requester import Requester
from impasto.bots.service.result_forms import TELEGRAM_DOCUMENT_BYTES, TELEGRAM_PHOTO_BYTES, TELEGRAM_SELF_HOSTED_BYTES
from impasto.bots.telegram.callback_data import JobButton, decode
from impasto.bots.telegram.posting import Where, start_progress
from impasto.bots.telegram.surface import TelegramSurface, limits_for
from impasto.queue import events
from impasto.queue.actions import Action
from impasto.storage import lifecycle
from impasto.storage.testing import Backend

# PTB's RetryAfter constructor itself reads the deprecated int ``retry_after``.
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")]

COMMAND_MESSAGE = 7  # the user's /imagine that every result here replies to


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[TelegramStack]:
    async with telegram_stack(tmp_path) as stack:
        yield stack


def surface(stack: TelegramStack) -> TelegramSurface:
    assert stack.delivery is not None
    assert isinstance(stack.delivery.surface, TelegramSurface)
    return stack.delivery.surface


def png(color: tuple[int, int, int], size: int = 16) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), color).save(buffer, "PNG")
    return buffer.getvalue()


class Asked(NamedTuple):
    job_id: str
    progress_id: int  # its "Waiting to start" message
    tag: str  # a word of its prompt, in every caption and text the bot writes about it


async def queued_job(
    stack: TelegramStack, prompt: str = "a lighthouse", *, chat_id: int = 42, topic: int | None = None
) -> Asked:
    """A job asked in ``chat_id`` (in forum ``topic``) as a reply to the command message, with its "Waiting to start"
    message posted and indexed as the handlers do it."""
    tag = f"tag{secrets.token_hex(4)}"
    channel = f"{chat_id}:{topic}" if topic else str(chat_id)  # as ``requests.requester`` names it
    who = Requester(platform="telegram", user_id="42", display_name="Alice", channel_id=channel)
    [ticket] = await stack.service.imagine(who, f"{prompt} {tag}", idempotency_key=tag)
    view = await stack.service.job(ticket.job_id)
    assert stack.application is not None
    assert stack.delivery is not None
    await start_progress(stack.application.bot, stack.delivery, Where(chat_id, topic, COMMAND_MESSAGE), view, ticket)
    [shown] = [m for m in await stack.service.messages(ticket.job_id) if m.kind == "progress"]
    return Asked(ticket.job_id, int(shown.message_id), tag)


def of(job: Asked, method: str) -> Callable[[Call], bool]:
    """A predicate: a call of ``method`` about this job."""

    def matches(call: Call) -> bool:
        text = call.params.get("text") or call.params.get("caption") or call.params.get("media", {}).get("caption")
        return call.method == method and job.tag in str(text)

    return matches


def posted(call: Call) -> bool:
    return isinstance(call.result, dict) and "message_id" in call.result


def is_result(job: Asked, method: str = "sendPhoto") -> Callable[[Call], bool]:
    """The job's result, accepted by the server: its caption ends with the job id (a progress caption does not)."""
    return lambda c: of(job, method)(c) and posted(c) and job.job_id in c.params["caption"]


async def result_of(stack: TelegramStack, job: Asked, method: str = "sendPhoto") -> Call:
    [result] = await stack.api.wait_for(is_result(job, method))
    return result


async def indexed(stack: TelegramStack, chat_id: str, message_id: object) -> str:
    """The job the message index has for a posted message (the core records it just after the post returns)."""
    async with asyncio.timeout(10):
        # polls SQL, which the core's task writes
        while (found := await stack.service.find_job_by_message("telegram", chat_id, str(message_id))) is None:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    return found.job_id


async def test_progress_then_grid_with_buttons(stack: TelegramStack) -> None:
    api = stack.api
    job = await queued_job(stack, '<a href="https://evil.example">x</a> & co')
    await events.publish(stack.redis, ns=stack.ns, event=events.Queued(job_id=job.job_id, position=2))
    [edit] = await api.wait_for(lambda c: of(job, "editMessageText")(c) and "queue position 2" in c.params["text"])
    assert edit.params["message_id"] == job.progress_id
    preview = base64.b64encode(png((0, 0, 255))).decode()
    progress = events.Progress(job_id=job.job_id, step=5, total=10, preview_png_b64=preview)
    await events.publish(stack.redis, ns=stack.ns, event=progress)
    [photo] = await api.wait_for(of(job, "sendPhoto"))
    assert "50%" in photo.params["caption"]  # the text message became a photo …
    assert photo.params["reply_parameters"]["message_id"] == COMMAND_MESSAGE
    assert [b["text"] for row in photo.params["reply_markup"]["inline_keyboard"] for b in row] == ["❌ Cancel"]
    await api.wait_for(lambda c: c.method == "deleteMessage" and c.params["message_id"] == job.progress_id)
    assert api.sent("sendChatAction")[0].params["action"] == "upload_photo"
    progress = events.Progress(job_id=job.job_id, step=9, total=10, preview_png_b64=preview)
    await events.publish(stack.redis, ns=stack.ns, event=progress)
    [media] = await api.wait_for(of(job, "editMessageMedia"))  # … edited in place since
    assert media.params["message_id"] == photo.result["message_id"]

    await stack.drain()
    result = await result_of(stack, job)
    view = await stack.service.job(job.job_id)
    grid = view.image(0)
    assert grid is not None
    assert result.files["photo"] == stack.images.get(grid.key)
    assert "evil.example" in result.params["caption"]
    assert '<a href="https://evil' not in result.params["caption"]
    rows = result.params["reply_markup"]["inline_keyboard"]
    assert [b["text"] for b in rows[0]] == ["U1", "U2", "U3", "U4", "🔄"]
    assert decode(rows[1][1]["callback_data"]) == JobButton(Action.VARIATION, job.job_id, 2)
    assert result.params["reply_parameters"]["message_id"] == COMMAND_MESSAGE
    # The preview photo goes, and the result is in the message index (its buttons find the job).
    await api.wait_for(lambda c: c.method == "deleteMessage" and c.params["message_id"] == photo.result["message_id"])
    assert await indexed(stack, "42", result.result["message_id"]) == job.job_id


async def test_a_rate_limited_result_is_retried_from_the_stored_job(stack: TelegramStack) -> None:
    surface(stack).wait_inline_s = 0  # no sleeping through the 429: the core must schedule the retry
    job = await queued_job(stack)
    stack.api.rate_limit("sendPhoto", retry_after=1)
    await stack.drain()
    [refused, result] = await stack.api.wait_for(of(job, "sendPhoto"), count=2)
    assert refused.result == {"error": 429}
    assert result.result["photo"]
    # Hearing the end again (a duplicate event, another process) posts nothing twice.
    assert stack.delivery is not None
    assert await stack.delivery.deliver_end(job.job_id, paints_noise=False) is True
    await asyncio.sleep(0.3)
    assert len([c for c in stack.api.calls if of(job, "sendPhoto")(c)]) == 2


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_several_bot_processes_post_each_result_exactly_once(tmp_path: Path, backend: Backend) -> None:
    """Two more processes' cores in the same consumer group, all hearing every end (a retry, ``shown``): one post."""
    async with telegram_stack(tmp_path, backend) as stack:
        await several_processes_post_once(stack)


async def several_processes_post_once(stack: TelegramStack) -> None:
    assert stack.application is not None
    assert stack.delivery is not None
    others = [stack.new_delivery(stack.application) for _ in range(2)]
    running = [asyncio.create_task(d.run(consumer=f"bot-{n}")) for n, d in enumerate(others, start=2)]
    try:
        jobs = [await queued_job(stack, f"a lighthouse number {n}") for n in range(4)]
        await stack.drain()
        for job in jobs:
            await result_of(stack, job)
            await asyncio.gather(*(d.deliver_end(job.job_id, paints_noise=False) for d in [stack.delivery, *others]))
        await asyncio.sleep(0.5)
    finally:
        for task in running:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    for job in jobs:
        assert len([c for c in stack.api.calls if of(job, "sendPhoto")(c) and posted(c)]) == 1


async def test_failure_is_told_in_the_chat(stack: TelegramStack) -> None:
    job = await queued_job(stack)
    async with stack.service.sessions() as session, session.begin():
        assert await lifecycle.fail_job(session, job.job_id, error="The GPU ran out of memory <oops>")
    await events.publish_final(stack.redis, ns=stack.ns, event=events.Failed(job_id=job.job_id, message="ignored"))
    [edit] = await stack.api.wait_for(lambda c: of(job, "editMessageText")(c) and "⚠️" in c.params["text"])
    assert edit.params["message_id"] == job.progress_id
    assert "&lt;oops&gt;" in edit.params["text"]  # the reason comes from the stored job, escaped


async def test_jobs_of_other_platforms_are_left_alone(stack: TelegramStack) -> None:
    who = Requester(platform="discord", user_id="4000000000000000001", channel_id="77")
    [ticket] = await stack.service.imagine(who, "a discord lighthouse", idempotency_key="tg-other-platform")
    await stack.service.record_message(ticket.job_id, "discord", "77", "900", "progress")
    mine = await queued_job(stack)
    await stack.drain()
    await result_of(stack, mine)
    assert not [c for c in stack.api.calls if ticket.job_id in str(c.params)]


async def test_a_result_that_beats_its_message_is_still_posted(stack: TelegramStack) -> None:
    """A very fast render: the job is done before the handler posted and indexed its progress message."""
    who = Requester(platform="telegram", user_id="42", display_name="Alice", channel_id="42")
    [ticket] = await stack.service.imagine(who, "a fast lighthouse", idempotency_key="tg-fast")
    await stack.drain()
    await asyncio.sleep(0.3)
    assert stack.application is not None
    assert stack.delivery is not None
    view = await stack.service.job(ticket.job_id)
    assert view.status == "done"
    await start_progress(stack.application.bot, stack.delivery, Where(42, None, COMMAND_MESSAGE), view, ticket)
    [result] = await stack.api.wait_for(lambda c: posted(c) and ticket.job_id in str(c.params.get("caption")))
    assert result.params["reply_parameters"]["message_id"] == COMMAND_MESSAGE


async def test_a_photo_telegram_refuses_goes_as_a_file_with_its_buttons(stack: TelegramStack) -> None:
    job = await queued_job(stack)
    stack.api.fail("sendPhoto", 400, "Bad Request: PHOTO_INVALID_DIMENSIONS")
    await stack.drain()
    document = await result_of(stack, job, "sendDocument")
    assert "U1" in str(document.params["reply_markup"])


async def test_a_group_that_became_a_supergroup_still_gets_its_result(stack: TelegramStack) -> None:
    job = await queued_job(stack, chat_id=-5001)
    stack.api.fail("sendPhoto", 400, "Bad Request: group chat was upgraded", {"migrate_to_chat_id": -1005001})
    await stack.drain()
    result = await result_of(stack, job)
    assert result.chat_id == -1005001
    assert await indexed(stack, "-1005001", result.result["message_id"]) == job.job_id


async def test_a_job_asked_in_a_forum_topic_is_answered_there(stack: TelegramStack) -> None:
    job = await queued_job(stack, chat_id=-100777, topic=55)
    preview = base64.b64encode(png((0, 0, 255))).decode()
    await events.publish(
        stack.redis, ns=stack.ns, event=events.Progress(job_id=job.job_id, step=1, total=2, preview_png_b64=preview)
    )
    [photo] = await stack.api.wait_for(of(job, "sendPhoto"))
    await stack.drain()
    result = await result_of(stack, job)
    assert photo.params["message_thread_id"] == result.params["message_thread_id"] == 55


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
async def test_a_result_refused_as_too_large_arrives_in_a_smaller_form(
    stack: TelegramStack, status: int, description: str
) -> None:
    assert stack.deliverer_task is not None
    stack.deliverer_task.cancel()  # the end is posted below, once the stored grid is a large one
    with contextlib.suppress(asyncio.CancelledError):
        await stack.deliverer_task
    job = await queued_job(stack)
    await stack.drain()
    grid = (await stack.service.job(job.job_id)).image(0)
    assert grid is not None
    full = noise_png(512)
    stack.images.path(grid.key).write_bytes(full)
    # The server takes less than the bot believes: the PNG and the next form are refused, each in Telegram's words.
    stack.api.fail("sendPhoto", status, description)
    stack.api.fail("sendPhoto", status, description)
    assert stack.delivery is not None
    assert await stack.delivery.deliver_end(job.job_id, paints_noise=False) is True
    first, second, result = [c for c in stack.api.calls if of(job, "sendPhoto")(c)]
    assert first.files["photo"] == full  # the PNG was tried first
    assert len(second.files["photo"]) < len(full)
    assert len(result.files["photo"]) < len(second.files["photo"])
    assert result.files["photo"].startswith(b"\xff\xd8")  # a JPEG for viewing
    assert "full resolution: 512×512 PNG" in result.params["caption"]
    assert "📄 Full-res file" in result.params["caption"]  # the full PNG is one press away
    assert stack.images.get(grid.key) == full  # kept, byte for byte


def test_a_self_hosted_bot_api_server_takes_larger_files() -> None:
    official = limits_for("https://api.telegram.org/")
    assert (official.inline_bytes, official.document_bytes) == (TELEGRAM_PHOTO_BYTES, TELEGRAM_DOCUMENT_BYTES)
    local = limits_for("http://telegram-bot-api:8081")
    assert (local.inline_bytes, local.document_bytes) == (TELEGRAM_PHOTO_BYTES, TELEGRAM_SELF_HOSTED_BYTES)


def counter(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_the_core_counts_deliveries_and_rate_limits(stack: TelegramStack) -> None:
    ok, retried = (counter("impasto_deliveries_total", platform="telegram", outcome=o) for o in ("ok", "retried"))
    limited = counter("impasto_platform_rate_limited_total", platform="telegram")
    surface(stack).wait_inline_s = 0
    job = await queued_job(stack)
    stack.api.rate_limit("sendPhoto", retry_after=1)
    await stack.drain()
    await result_of(stack, job)
    await asyncio.sleep(0.2)  # the counter moves just after the post returns
    assert counter("impasto_deliveries_total", platform="telegram", outcome="ok") == ok + 1
    assert counter("impasto_deliveries_total", platform="telegram", outcome="retried") == retried + 1
    assert counter("impasto_platform_rate_limited_total", platform="telegram") == limited + 1
