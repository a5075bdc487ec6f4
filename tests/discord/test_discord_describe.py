"""/describe through the real discord.py client and the fake Discord, on the real core and queue, with a real worker
whose captioner is the engine's tiny CLIP: four prompts posted (each parses), 1–4 and Imagine all make /imagine jobs of
those prompts, 🔄 gives four other prompts, and bad input is one line with nothing charged."""

from __future__ import annotations

import asyncio
import io
from dataclasses import replace
from pathlib import Path
from typing import Any

from discord_stack import ServiceStack
from fake_discord import ALICE, BOB, FakeDiscord
from PIL import Image
from sqlalchemy import select

from impasto.bots.discord.app import ImpastoBot
from impasto.bots.discord.describe import describe_content, describe_view
from impasto.bots.discord.texts import escape
from impasto.bots.language.parser import parse_imagine
from impasto.bots.service.requester import Requester
from impasto.bots.service.views import JobView
from impasto.engine.describe import SUBJECTS
from impasto.engine.engine import Engine
from impasto.engine.nsfw import load_classifier
from impasto.engine.registry import load_registry
from impasto.queue.actions import Action
from impasto.queue.renderer import EngineRenderer
from impasto.storage.models import ModerationEvent

Json = dict[str, Any]
NUMBERS = ("1️⃣", "2️⃣", "3️⃣", "4️⃣")


def png(width: int = 48, height: int = 32) -> bytes:
    buffer = io.BytesIO()
    Image.effect_noise((width, height), 60).convert("RGB").save(buffer, "PNG")
    return buffer.getvalue()


def use_captioner(stack: ServiceStack, tmp_path: Path) -> None:
    """The worker's renderer is the real engine: /describe runs the tiny CLIP captioner (no diffusion model is loaded
    unless a render comes, and these tests render none)."""
    registry = load_registry(default="tiny-sd15")
    stack.renderer_factory = lambda: EngineRenderer(Engine(registry, cache_dir=tmp_path / "models"))


async def job_of(stack: ServiceStack, message: Json) -> JobView:
    for _ in range(500):
        view = await stack.service.find_job_by_message("discord", message["channel_id"], message["id"])
        if view is not None:
            return view
        await asyncio.sleep(0.02)
    raise AssertionError(f"message {message['id']} was never recorded")


async def described(fake: FakeDiscord, stack: ServiceStack, waiting_id: str) -> tuple[Json, JobView]:
    """Drain the queue, then wait for the describe message to show its four prompts and buttons."""
    await fake.wait_message(lambda m: m["id"] == waiting_id and "Waiting to start" in m["content"])
    await job_of(stack, fake.messages[waiting_id])
    await stack.drain()
    message = await fake.wait_message(
        lambda m: m["id"] == waiting_id and NUMBERS[3] in m["content"] and bool(m["components"])
    )
    return message, await stack.service.job((await job_of(stack, message)).job_id)


def check_prompts(message: Json, view: JobView, ratio: str) -> list[str]:
    prompts = list(view.described)
    assert len(prompts) == 4
    lines = [line for line in message["content"].split("\n") if line.startswith(NUMBERS)]
    assert lines == [f"{NUMBERS[i]} {escape(p)}" for i, p in enumerate(prompts)]
    registry = load_registry(default="tiny-sd15")
    for prompt in prompts:
        assert prompt.endswith(f"--ar {ratio}")
        assert prompt.split(",")[0] in SUBJECTS  # the captioner's words, not a stand-in's
        (job,) = parse_imagine(prompt, registry=registry)
        assert job.aspect_ratio == ratio
    return prompts


async def replies_to(fake: FakeDiscord, source_id: str, count: int) -> list[Json]:
    """The messages answering ``source_id`` (each press's "Waiting to start"), once there are ``count``."""

    def replies() -> list[Json]:
        return [m for m in fake.messages.values() if m.get("message_reference", {}).get("message_id") == source_id]

    await fake.wait_for(lambda: len(replies()) >= count)
    return replies()


async def test_describe_an_attachment_then_imagine_one_all_and_again(
    fake: FakeDiscord, bot: ImpastoBot, stack: ServiceStack, tmp_path: Path
) -> None:
    use_captioner(stack, tmp_path)
    attachment_data = png(48, 32)
    attachment = fake.add_attachment("harbour_*view*.png", attachment_data)
    record = await fake.slash(
        "describe", [{"name": "image", "type": 11, "value": attachment["id"]}], attachments=[attachment]
    )
    mid = record.original_id or await fake.wait_for(lambda: record.original_id)
    message, view = await described(fake, stack, mid)
    assert view.action == Action.DESCRIBE.value
    assert view.status == "done"
    assert view.user_id == ALICE
    prompts = check_prompts(message, view, "3:2")
    assert f"<@{ALICE}>" in message["content"]
    assert "harbour\\_\\*view\\*.png" in message["content"]
    assert message["allowed_mentions"] == {"parse": []}
    # The described picture above the prompts, in an embed (as Midjourney shows it): the attachment itself.
    name = f"describe_{view.job_id}.png"
    assert [a["filename"] for a in message["attachments"]] == [name]
    assert fake.attachment_bytes(message) == attachment_data
    assert [e.get("image", {}).get("url") for e in message["embeds"]] == [f"attachment://{name}"]
    rows = [[b.get("label") or b["emoji"]["name"] for b in row["components"]] for row in message["components"]]
    assert rows == [["1", "2", "3", "4", "🔄"], ["Imagine all"]]
    assert fake.button(message, "2")["custom_id"] == f"imp:dp:2:{view.job_id}"
    assert view.charged_gpu_seconds > 0  # charged what the captioner used, as any job
    # Asked from a Chinese client (the interaction's locale is kept with the job): the same, in Chinese.
    chinese = replace(view, locale="zh_Hans")
    assert describe_content(chinese).startswith(f"<@{ALICE}> 请求的 harbour\\_\\*view\\*.png 的四条提示词")
    buttons = [item.item for item in describe_view(view.job_id, "zh_Hans").children]  # type: ignore[attr-defined]
    labels = [b.label or b.emoji.name for b in buttons]
    assert labels == ["1", "2", "3", "4", "🔄", "全部生成"]

    # 🔄: the same image described again, four other prompts.
    again = await fake.press(mid, fake.button(message, "🔄")["custom_id"], user_id=BOB)
    await fake.wait_for(lambda: again.callback)
    (waiting,) = await replies_to(fake, mid, 1)
    second, second_view = await described(fake, stack, waiting["id"])
    assert second_view.parent_id == view.job_id
    assert second_view.user_id == BOB
    others = check_prompts(second, second_view, "3:2")
    assert {p.split(",")[0] for p in others}.isdisjoint({p.split(",")[0] for p in prompts})

    # 2: Midjourney's dialog with prompt 2 to edit first; submitted as it is, one /imagine of prompt 2 by the presser.
    record2 = await fake.press(mid, fake.button(message, "2")["custom_id"], user_id=BOB)
    await fake.wait_for(lambda: record2.callback)
    assert record2.callback is not None
    assert record2.callback["type"] == 9  # a modal
    assert record2.callback["data"]["title"] == "Imagine this prompt"
    assert record2.callback["data"]["components"][0]["components"][0]["value"] == prompts[1]
    await fake.submit_modal(record2, {"prompt": prompts[1]}, user_id=BOB)
    made = await replies_to(fake, mid, 2)
    assert len(made) == 2
    job2 = await job_of(stack, made[-1])
    assert (job2.action, job2.prompt, job2.user_id, job2.status) == ("imagine", prompts[1], BOB, "queued")
    assert made[-1]["content"].startswith(f"**{escape(job2.display)}** - <@{BOB}> (Waiting to start)")

    # Imagine all: four /imagine jobs, one per prompt.
    record_all = await fake.press(mid, fake.button(message, "Imagine all")["custom_id"], user_id=ALICE)
    await fake.wait_for(lambda: record_all.callback)
    made = await replies_to(fake, mid, 6)
    assert len(made) == 6
    assert all("(Waiting to start)" in m["content"] for m in made[2:])
    jobs = [await job_of(stack, m) for m in made[2:]]
    assert sorted(j.prompt for j in jobs) == sorted(prompts)
    assert {(j.action, j.user_id) for j in jobs} == {("imagine", ALICE)}


async def test_describe_a_link_and_refusals_charge_nothing(
    fake: FakeDiscord, bot: ImpastoBot, stack: ServiceStack, tmp_path: Path
) -> None:
    use_captioner(stack, tmp_path)
    alice = Requester(platform="discord", user_id=ALICE)

    # Not an image (an attachment, then a link): one line each, no job, nothing held.
    notes = fake.add_attachment("notes.txt", b"hello", "text/plain")
    record = await fake.slash("describe", [{"name": "image", "type": 11, "value": notes["id"]}], attachments=[notes])
    refused = await fake.wait_message(lambda m: m["id"] == record.original_id and m["content"].startswith("⚠️"))
    assert "notes.txt" in refused["content"]
    assert "\n" not in refused["content"]
    text_link = fake.add_attachment("page.png", b"<html>not a picture</html>", "text/html")["url"]
    record = await fake.slash("describe", [{"name": "link", "type": 3, "value": text_link}])
    refused = await fake.wait_message(lambda m: m["id"] == record.original_id and m["content"].startswith("⚠️"))
    assert "is not a PNG, JPEG, WebP or GIF image" in refused["content"]
    # Too big (refused from what Discord says of it, before any download) and a link to a private address.
    huge = fake.add_attachment("huge.png", b"\x89PNG\r\n\x1a\n" + bytes(11 * 1024 * 1024))
    record = await fake.slash("describe", [{"name": "image", "type": 11, "value": huge["id"]}], attachments=[huge])
    refused = await fake.wait_message(lambda m: m["id"] == record.original_id and m["content"].startswith("⚠️"))
    assert refused["content"] == "⚠️ attachment 'huge.png' is 11.5 MB; the limit is 10.5 MB"
    record = await fake.slash("describe", [{"name": "link", "type": 3, "value": "http://10.1.2.3/cat.png"}])
    refused = await fake.wait_message(lambda m: m["id"] == record.original_id and m["content"].startswith("⚠️"))
    assert refused["content"] == "⚠️ the image link http://10.1.2.3/cat.png points to a private address"
    record = await fake.slash("describe", [])
    refused = await fake.wait_message(lambda m: m["id"] == record.original_id and m["content"].startswith("⚠️"))
    assert refused["content"] == "⚠️ /describe takes one image: an attachment, a link or a job id"
    assert await stack.service.history(alice) == []

    # A link to a picture: described like an attachment (a tall one: --ar 2:3).
    link = fake.add_attachment("tall.png", png(32, 48))["url"]
    record = await fake.slash("describe", [{"name": "link", "type": 3, "value": link}])
    mid = record.original_id or await fake.wait_for(lambda: record.original_id)
    message, view = await described(fake, stack, mid)
    check_prompts(message, view, "2:3")
    assert view.display == link

    # /show brings the four prompts and their buttons back.
    record = await fake.slash("show", [{"name": "job_id", "type": 3, "value": view.job_id}])
    shown = await fake.wait_message(lambda m: m["id"] == record.original_id and NUMBERS[3] in m["content"])
    assert shown["content"] == message["content"]
    assert fake.button(shown, "Imagine all")["custom_id"] == f"imp:da:0:{view.job_id}"


async def test_the_worker_checks_the_image_to_describe(
    fake: FakeDiscord, bot: ImpastoBot, stack: ServiceStack, tmp_path: Path
) -> None:
    """The image a user brings is classified on the worker like any input picture: flagged, the describe job fails
    with the one line, is refunded and audited, and no prompt is written."""
    use_captioner(stack, tmp_path)
    stack.classifier_factory = lambda: load_classifier("tiny", tmp_path / "models")
    stack.nsfw_threshold = 0.0  # the tiny classifier's score is never below 0: every picture is flagged
    attachment = fake.add_attachment("flagged.png", png(40, 40))
    record = await fake.slash(
        "describe", [{"name": "image", "type": 11, "value": attachment["id"]}], attachments=[attachment]
    )
    mid = record.original_id or await fake.wait_for(lambda: record.original_id)
    await fake.wait_message(lambda m: m["id"] == mid and "Waiting to start" in m["content"])
    view = await job_of(stack, fake.messages[mid])
    await stack.drain()
    failed = await fake.wait_message(lambda m: m["id"] == mid and "(failed: " in m["content"])
    assert failed["content"] == (
        f"**flagged.png** - <@{ALICE}> (failed: this job was refused: the image you gave was flagged as sexual or "
        "explicit content; nothing was charged)"
    )
    assert not failed["components"]
    done = await stack.service.job(view.job_id)
    assert done.status == "failed"
    assert done.described == ()
    assert done.charged_gpu_seconds == 0
    async with stack.service.sessions() as session:
        kinds = list(await session.scalars(select(ModerationEvent.kind).where(ModerationEvent.job_id == view.job_id)))
    assert kinds  # audited
