"""Whole conversations through the real discord.py client and the fake Discord, on the real core: the job service on
SQLite, the queue on Redis db 15 (a namespace of its own) and a worker with the no-op renderer."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlparse

from discord_stack import ServiceStack
from fake_discord import ALICE, BOB, DM_CHANNEL_ID, GUILD_ID, PERMISSIONS, FakeDiscord, user_payload
from PIL import Image
from sqlalchemy import func, select

from impasto.bots.discord.app import ImpastoBot
from impasto.bots.moderation.admission_check import ModerationCheck
from impasto.bots.service.delivery.core import REPLY_TO, reply_to_row
from impasto.bots.service.requester import Requester
from impasto.bots.service.views import JobView
from impasto.bots.web.links import verify
from impasto.engine.grid import compose_grid
from impasto.engine.spec import Progress, ProgressFn, RenderResult
from impasto.queue.actions import Action
from impasto.queue.moderation.policy import load_policy
from impasto.queue.renderer import NoopRenderer
from impasto.queue.specs import RenderWork
from impasto.storage.models import Job

Json = dict[str, Any]
PRIMARY, SECONDARY = 1, 2


def png(color: str = "red", size: int = 8) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), color).save(buffer, "PNG")
    return buffer.getvalue()


def prompt_option(text: str) -> list[Json]:
    return [{"name": "prompt", "type": 3, "value": text}]


def alice(channel_id: str | None = None) -> Requester:
    return Requester(platform="discord", user_id=ALICE, channel_id=channel_id)


class PreviewRenderer(NoopRenderer):
    """The no-op renderer, with a preview picture at every step (as the engine sends)."""

    def render(self, work: RenderWork, progress: ProgressFn) -> RenderResult:
        def with_preview(step: Progress) -> None:
            progress(Progress(step.step, step.total, Image.new("RGB", (8, 8), "gray")))

        return super().render(work, with_preview)


async def shown(fake: FakeDiscord, stack: ServiceStack, message: Json) -> JobView:
    """The job a message shows, from the core's message index (the bot records it right after posting)."""
    for _ in range(500):  # polls a condition, with a bound: the index is written just after the post
        view = await stack.service.find_job_by_message("discord", message["channel_id"], message["id"])
        if view is not None:
            return view
        await asyncio.sleep(0.02)
    raise AssertionError(f"message {message['id']} was never recorded")


async def waiting(fake: FakeDiscord, record: Any) -> Json:
    mid = record.original_id or await fake.wait_for(lambda: record.original_id)
    return await fake.wait_message(lambda m: m["id"] == mid and "Waiting to start" in m["content"])


async def rendered(fake: FakeDiscord, stack: ServiceStack, message: Json) -> Json:
    """Run the worker until the queue is empty, then wait for ``message`` to become a result with buttons."""
    await shown(fake, stack, message)
    await stack.drain()
    return await fake.wait_message(lambda m: m["id"] == message["id"] and bool(m["components"]))


async def imagine_grid(fake: FakeDiscord, stack: ServiceStack, text: str = "a lighthouse", **kw: Any) -> Json:
    """/imagine, then the worker's progress and completion: returns the grid message."""
    record = await fake.slash("imagine", prompt_option(text), **kw)
    return await rendered(fake, stack, await waiting(fake, record))


def caption(message: Json) -> str:
    return str(message["content"]).split("\n")[0]  # below it: the tiny model's "the picture is noise" note


async def reply_to(fake: FakeDiscord, source_id: str, *, more_than: int = 0) -> Json:
    def replies() -> list[Json]:
        return [m for m in fake.messages.values() if m.get("message_reference", {}).get("message_id") == source_id]

    await fake.wait_for(lambda: len(replies()) > more_than)
    return replies()[-1]


async def test_imagine_progress_then_grid_with_buttons(fake: FakeDiscord, bot: ImpastoBot, stack: ServiceStack) -> None:
    stack.renderer_factory = lambda: PreviewRenderer(steps=3)
    grid = await imagine_grid(fake, stack)
    job = await shown(fake, stack, grid)
    assert caption(grid) == f"**a lighthouse** - <@{ALICE}> (fast)"
    rows = [[b.get("label") or b["emoji"]["name"] for b in row["components"]] for row in grid["components"]]
    assert rows == [["U1", "U2", "U3", "U4", "🔄"], ["V1", "V2", "V3", "V4"]]
    assert fake.button(grid, "U2")["custom_id"] == f"imp:u:2:{job.job_id}"
    assert len(grid["attachments"]) == 1
    with Image.open(io.BytesIO(fake.attachment_bytes(grid))) as image:
        assert image.size == (64, 64)  # the no-op renderer's 2×2 of 32 px tiles
    assert grid["allowed_mentions"] == {"parse": []}
    assert not grid["attachments"][0]["filename"].startswith("SPOILER_")
    # On the way, the message showed the progress, with the worker's preview attached.
    edits = [r for r in fake.requests if r.method == "PATCH" and "(33%) (fast)" in str((r.body or {}).get("content"))]
    assert edits
    assert any(r.files for r in edits)


async def test_everyone_in_a_prompt_pings_nobody(fake: FakeDiscord, bot: ImpastoBot, stack: ServiceStack) -> None:
    grid = await imagine_grid(fake, stack, "@everyone look <@&2000000000000000099> **bold**")
    assert "@everyone" not in grid["content"]
    assert "<@&2000000000000000099>" not in grid["content"]
    assert "\\*\\*bold\\*\\*" in grid["content"]
    for message in fake.messages.values():
        if message["content"]:
            assert message["allowed_mentions"] == {"parse": []}


async def test_bad_input_is_one_line_naming_the_problem(
    fake: FakeDiscord, bot: ImpastoBot, stack: ServiceStack
) -> None:
    record = await fake.slash("imagine", prompt_option("a cat --ar 0:1"))
    message = await fake.wait_message(lambda m: m["id"] == record.original_id and m["content"])
    assert message["content"].startswith("⚠️ ")
    assert "--ar 0:1" in message["content"]
    assert "\n" not in message["content"]
    assert await stack.service.history(alice()) == []  # nothing queued, nothing charged


async def test_imagine_in_a_dm(fake: FakeDiscord, bot: ImpastoBot, stack: ServiceStack) -> None:
    grid = await imagine_grid(fake, stack, "a dm cat", dm=True)
    assert grid["channel_id"] == DM_CHANNEL_ID
    assert (await shown(fake, stack, grid)).guild_id is None
    # A button on a DM grid: the result is a reply in the DM.
    await fake.press(grid["id"], fake.button(grid, "U1")["custom_id"])
    single = await fake.wait_message(lambda m: "Image #1" in m["content"])
    assert single["channel_id"] == DM_CHANNEL_ID


async def test_imagine_with_an_image_prompt(fake: FakeDiscord, bot: ImpastoBot, stack: ServiceStack) -> None:
    attachment = fake.add_attachment("ref.png", png("yellow", 32))
    options = [*prompt_option("like this"), {"name": "image", "type": 11, "value": attachment["id"]}]
    record = await fake.slash("imagine", options, attachments=[attachment])
    job = await shown(fake, stack, await waiting(fake, record))
    assert record.callback == {"type": 5}
    keys = [str(k) for k in job.params["image_prompts"]]
    assert [stack.images.get(k) for k in keys] == [png("yellow", 32)]  # the attachment, in the image store


async def test_a_non_image_attachment_is_refused(fake: FakeDiscord, bot: ImpastoBot, stack: ServiceStack) -> None:
    attachment = fake.add_attachment("notes.txt", b"hello", "text/plain")
    options = [*prompt_option("like this"), {"name": "image", "type": 11, "value": attachment["id"]}]
    record = await fake.slash("imagine", options, attachments=[attachment])
    message = await fake.wait_message(lambda m: m["id"] == record.original_id and m["content"])
    assert "notes.txt" in message["content"]
    assert "only PNG, JPEG, WebP or GIF" in message["content"]
    assert await stack.service.history(alice()) == []


async def test_permutations_post_one_message_per_job(fake: FakeDiscord, bot: ImpastoBot, stack: ServiceStack) -> None:
    await fake.slash("imagine", prompt_option("a {a, b} cat"))
    await fake.wait_for(lambda: len([m for m in fake.messages.values() if "Waiting" in m["content"]]) == 2)
    contents = sorted(m["content"] for m in fake.messages.values() if "Waiting" in m["content"])
    assert contents == [f"**a a cat** - <@{ALICE}> (Waiting to start)", f"**a b cat** - <@{ALICE}> (Waiting to start)"]


async def test_every_grid_button(fake: FakeDiscord, bot: ImpastoBot, stack: ServiceStack) -> None:
    grid = await imagine_grid(fake, stack)
    parent = await shown(fake, stack, grid)
    for count, label in enumerate(("U1", "U2", "U3", "U4", "🔄", "V1", "V2", "V3", "V4")):
        custom_id = fake.button(grid, label)["custom_id"]
        record = await fake.press(grid["id"], custom_id, user_id=BOB)
        await fake.wait_for(lambda r=record: r.callback)
        assert record.callback is not None
        assert record.callback["type"] == 7  # the press is acknowledged by editing the source message...
        grid = fake.messages[grid["id"]]
        assert fake.button(grid, label)["style"] == PRIMARY  # ...turning its button blue
        await reply_to(fake, grid["id"], more_than=count)
    # U# replies with the single image at once; V#/🔄 reply with a new job's progress message.
    replies = [m for m in fake.messages.values() if m.get("message_reference", {}).get("message_id") == grid["id"]]
    singles = [m for m in replies if "Image #" in m["content"]]
    assert sorted(m["content"] for m in singles) == sorted(
        f"**a lighthouse** - Image #{n} <@{BOB}>" for n in range(1, 5)
    )
    assert len([m for m in replies if "Waiting" in m["content"]]) == 5
    # Each reply shows the job its button asked for: the presser owns (and pays for) it, its parent is the grid.
    made = [await shown(fake, stack, m) for m in replies]
    assert {(v.action, v.image_index or 0) for v in made} == {
        *((Action.UPSCALE.value, n) for n in range(1, 5)),
        *((Action.VARIATION.value, n) for n in range(1, 5)),
        (Action.REROLL.value, 0),
    }
    assert {(v.user_id, v.parent_id) for v in made} == {(BOB, parent.job_id)}
    assert fake.button(grid, "U1")["style"] == PRIMARY  # earlier presses stay blue


async def test_every_single_image_button(fake: FakeDiscord, bot: ImpastoBot, stack: ServiceStack) -> None:
    grid = await imagine_grid(fake, stack)
    await fake.press(grid["id"], fake.button(grid, "U2")["custom_id"])
    single = await fake.wait_message(lambda m: "Image #2" in m["content"])
    labels = [b.get("label") or b["emoji"]["name"] for b in fake.buttons(single)]
    assert labels == [
        "Upscale (Subtle)", "Upscale (Creative)", "Upscale 4x (Subtle)", "Upscale 4x (Creative)",
        "Vary (Subtle)", "Vary (Strong)", "Zoom Out 2x", "Zoom Out 1.5x", "Custom Zoom", "Make Square",
        "⬅️", "➡️", "⬆️", "⬇️", "❤️", "Details",
    ]  # fmt: skip
    # Vary (Region) needs a mask editor, which no platform offers without the web front door: no button.
    pressed = 0
    for label in labels:
        if label in ("Custom Zoom", "Details", "❤️"):
            continue  # a modal, private answers: below and in test_details_and_favorite_answer_privately
        record = await fake.press(single["id"], fake.button(single, label)["custom_id"])
        await fake.wait_for(lambda r=record: r.callback)
        assert record.callback is not None
        reply = await reply_to(fake, single["id"], more_than=pressed)
        pressed += 1
        assert "Waiting to start" in reply["content"]
        view = await shown(fake, stack, reply)
        assert view.parent_id is not None  # a child of the picked image, rendered anew


async def test_details_and_favorite_answer_privately(fake: FakeDiscord, bot: ImpastoBot, stack: ServiceStack) -> None:
    grid = await imagine_grid(fake, stack)
    await fake.press(grid["id"], fake.button(grid, "U2")["custom_id"])
    single = await fake.wait_message(lambda m: "Image #2" in m["content"])
    record = await fake.press(single["id"], fake.button(single, "❤️")["custom_id"])
    await fake.wait_for(lambda: record.callback)
    assert record.callback == {"type": 6}
    notice = await fake.wait_message(lambda m: "favorites" in m["content"])
    assert notice["flags"] & 64
    assert (await shown(fake, stack, single)).favorite
    # Someone else's ❤️: the core refuses, and the refusal is one private line.
    await fake.press(single["id"], fake.button(single, "❤️")["custom_id"], user_id=BOB)
    refused = await fake.wait_message(lambda m: "owner" in m["content"])
    assert refused["content"].startswith("⚠️ ")
    assert refused["flags"] & 64
    await fake.press(single["id"], fake.button(single, "Details")["custom_id"], user_id=BOB)
    details = await fake.wait_message(lambda m: m["content"].startswith("**Job ID**"))
    assert details["flags"] & 64


async def test_a_job_message_from_a_finished_render_becomes_a_single_result(
    fake: FakeDiscord, bot: ImpastoBot, stack: ServiceStack
) -> None:
    grid = await imagine_grid(fake, stack)
    await fake.press(grid["id"], fake.button(grid, "U2")["custom_id"])
    single = await fake.wait_message(lambda m: "Image #2" in m["content"])
    picked = await shown(fake, stack, single)
    await fake.press(single["id"], fake.button(single, "Upscale (Subtle)")["custom_id"])
    reply = await reply_to(fake, single["id"])
    new_job = await shown(fake, stack, reply)
    assert new_job.job_id != picked.job_id
    done = await rendered(fake, stack, reply)
    assert caption(done) == f"**a lighthouse** - Upscaled (Subtle) <@{ALICE}>"
    assert fake.button(done, "Vary (Subtle)")["custom_id"] == f"imp:vs:1:{new_job.job_id}"


async def test_a_button_from_before_a_restart_still_works(
    fake: FakeDiscord,
    start_bot,
    stack: ServiceStack,  # type: ignore[no-untyped-def]
) -> None:
    first = await start_bot()
    grid = await imagine_grid(fake, stack)
    await first.close()
    await fake.drop_connections()
    await start_bot()  # a new client (nothing in memory from the first), the same service
    assert fake.identified == 2
    await fake.press(grid["id"], fake.button(grid, "V3")["custom_id"], user_id=BOB)
    reply = await reply_to(fake, grid["id"])
    assert "Waiting to start" in reply["content"]
    view = await shown(fake, stack, reply)
    assert (view.action, view.image_index) == (Action.VARIATION.value, 3)


async def test_remix_modal_edits_the_prompt_first(fake: FakeDiscord, bot: ImpastoBot, stack: ServiceStack) -> None:
    grid = await imagine_grid(fake, stack)
    await stack.service.update_settings(alice(), remix=True)
    record = await fake.press(grid["id"], fake.button(grid, "V1")["custom_id"])
    await fake.wait_for(lambda: record.callback)
    assert record.callback is not None
    assert record.callback["type"] == 9
    field = record.callback["data"]["components"][0]["components"][0]
    assert field["value"] == "a lighthouse"
    submitted = await fake.submit_modal(record, {"prompt": "a lighthouse in snow"})
    reply = await fake.wait_message(lambda m: "a lighthouse in snow" in m["content"])
    assert "Waiting to start" in reply["content"]
    assert submitted.callback is not None
    assert submitted.callback["type"] == 7
    assert (await shown(fake, stack, reply)).prompt == "a lighthouse in snow"
    assert fake.button(fake.messages[grid["id"]], "V1")["style"] == PRIMARY


async def test_custom_zoom_modal_carries_zoom(fake: FakeDiscord, bot: ImpastoBot, stack: ServiceStack) -> None:
    grid = await imagine_grid(fake, stack)
    await fake.press(grid["id"], fake.button(grid, "U4")["custom_id"])
    single = await fake.wait_message(lambda m: "Image #4" in m["content"])
    record = await fake.press(single["id"], fake.button(single, "Custom Zoom")["custom_id"])
    await fake.wait_for(lambda: record.callback)
    assert record.callback is not None
    assert record.callback["data"]["title"] == "Zoom Out"
    field = record.callback["data"]["components"][0]["components"][0]
    assert field["value"].startswith("a lighthouse")
    assert field["value"].endswith("--zoom 2")
    await fake.submit_modal(record, {"prompt": "a lighthouse --zoom 1.6"})
    reply = await reply_to(fake, single["id"])
    view = await shown(fake, stack, reply)
    assert view.action == Action.ZOOM_CUSTOM.value
    assert view.params["zoom"] == 1.6


async def test_envelope_sends_details_by_dm(fake: FakeDiscord, bot: ImpastoBot, stack: ServiceStack) -> None:
    grid = await imagine_grid(fake, stack)
    job = await shown(fake, stack, grid)
    await fake.react(grid["id"], "✉️", user_id=BOB)
    dm = await fake.wait_message(lambda m: m["content"].startswith(f"**Job ID**: {job.job_id}"))
    assert dm["channel_id"] == f"9{BOB[1:]}"
    assert len(dm["attachments"]) == 4  # the grid's four images


async def test_cross_by_the_owner_deletes_and_by_others_does_nothing(
    fake: FakeDiscord, bot: ImpastoBot, stack: ServiceStack
) -> None:
    grid = await imagine_grid(fake, stack)
    await fake.react(grid["id"], "❌", user_id=BOB)
    await fake.react(grid["id"], "❌", user_id=ALICE)
    await fake.wait_for(lambda: grid["id"] not in fake.messages)
    # BOB's reaction came first and was handled first: it deleted nothing (the message lived until ALICE's).
    deletes = [r for r in fake.requests if r.method == "DELETE" and r.path.endswith(grid["id"])]
    assert len(deletes) == 1


async def test_cross_on_a_waiting_job_shows_it_stopped(fake: FakeDiscord, bot: ImpastoBot, stack: ServiceStack) -> None:
    record = await fake.slash("imagine", prompt_option("slow one"))
    message = await waiting(fake, record)
    await shown(fake, stack, message)
    await fake.react(message["id"], "❌", user_id=ALICE)
    stopped = await fake.wait_message(lambda m: m["id"] == message["id"] and "(Stopped)" in m["content"])
    assert stopped["content"] == f"**slow one** - <@{ALICE}> (Stopped)"


async def test_settings_panel_and_its_controls(fake: FakeDiscord, bot: ImpastoBot, stack: ServiceStack) -> None:
    record = await fake.slash("settings")
    await fake.wait_for(lambda: record.callback)
    assert record.callback == {"type": 5, "data": {"flags": 64}}
    panel = await fake.wait_message(lambda m: m["id"] == record.original_id and m["components"])
    assert panel["flags"] & 64
    select = panel["components"][0]["components"][0]
    assert select["custom_id"] == "imp:set:model"
    models = ["niji6", "v5", "v6"]  # the registry's models a prompt can name (--niji 6, --v 5, --v 6)
    assert [o["value"] for o in select["options"]] == models
    remix = fake.button(panel, "Remix mode")
    assert remix["style"] == SECONDARY
    await fake.press(panel["id"], remix["custom_id"])
    await fake.wait_for(lambda: fake.button(fake.messages[panel["id"]], "Remix mode")["style"] == 3)
    assert (await stack.service.settings(alice())).remix
    other = models[1]
    await fake.press(panel["id"], "imp:set:model", values=[other])

    def chosen() -> list[str]:
        select = fake.messages[panel["id"]]["components"][0]["components"][0]
        return [o["value"] for o in select["options"] if o.get("default")]

    await fake.wait_for(lambda: chosen() == [other])
    assert (await stack.service.settings(alice())).model == other
    assert not [m for m in fake.messages.values() if m["content"].startswith("⚠️")]  # one press, one handler


async def test_blend_takes_two_to_five_images(fake: FakeDiscord, bot: ImpastoBot, stack: ServiceStack) -> None:
    a = fake.add_attachment("a.png", png("red"))
    b = fake.add_attachment("b.png", png("blue"))
    options = [
        {"name": "image1", "type": 11, "value": a["id"]},
        {"name": "image2", "type": 11, "value": b["id"]},
        {"name": "dimensions", "type": 3, "value": "portrait"},
    ]
    record = await fake.slash("blend", options, attachments=[a, b])
    message = await waiting(fake, record)
    assert message["content"].startswith("**")
    assert "--ar 2:3" in message["content"]
    job = await shown(fake, stack, message)
    assert job.action == "blend"
    assert [stack.images.get(str(k)) for k in job.params["image_prompts"]] == [png("red"), png("blue")]
    assert job.params["width"] < job.params["height"]  # portrait


async def test_text_commands_answer_privately(fake: FakeDiscord, bot: ImpastoBot, stack: ServiceStack) -> None:
    def sub(name: str, options: list[Json], kind: int = 1) -> Json:
        return {"name": name, "type": kind, "options": options}

    def text(name: str, value: str) -> Json:
        return {"name": name, "type": 3, "value": value}

    option_set = sub("option", [sub("set", [text("option", "mine"), text("value", "--ar 7:4")])], 2)
    cases = [
        ("info", [], "**Subscription**"),
        ("fast", [], "Fast mode on"),
        ("relax", [], "⚠️ relax mode is not part of the basic plan"),  # the core's refusal, one private line
        ("turbo", [], "Turbo mode on"),
        ("public", [], "Public mode on"),
        ("stealth", [], "Stealth mode on"),
        ("history", [], "No jobs yet"),
        ("prefer", [sub("suffix", [text("new_value", "--ar 2:3")])], "Suffix set to `--ar 2:3`"),
        ("prefer", [sub("remix", [])], "Remix mode turned on."),
        ("prefer", [option_set], "Custom option `--mine` set to `--ar 7:4`"),
        ("prefer", [sub("option", [sub("list", [])], 2)], "`--mine`: `--ar 7:4`"),
    ]
    for name, options, expected in cases:
        record = await fake.slash(name, options)
        message = await fake.wait_message(lambda m, r=record: m["id"] == r.original_id and m["content"])
        assert message["flags"] & 64
        assert expected in message["content"], (name, message["content"])
    settings = await stack.service.settings(alice())
    assert (settings.mode, settings.visibility, settings.remix) == ("turbo", "stealth", True)


async def test_help_and_show(fake: FakeDiscord, bot: ImpastoBot, stack: ServiceStack) -> None:
    record = await fake.slash("help")
    await fake.wait_for(lambda: record.callback)
    assert record.callback is not None
    assert record.callback["type"] == 4
    grid = await imagine_grid(fake, stack)
    job = await shown(fake, stack, grid)
    record = await fake.slash("show", [{"name": "job_id", "type": 3, "value": job.job_id}], user_id=ALICE)
    again = await fake.wait_message(lambda m: m["id"] == record.original_id and m["components"])
    assert fake.button(again, "U1")["custom_id"] == fake.button(grid, "U1")["custom_id"]
    record = await fake.slash("show", [{"name": "job_id", "type": 3, "value": "nope"}])
    refused = await fake.wait_message(lambda m: m["id"] == record.original_id and m["content"])
    assert refused["content"].startswith("⚠️ ")
    assert "nope" in refused["content"]
    assert "\n" not in refused["content"]


async def test_a_429_from_rest_is_waited_out(fake: FakeDiscord, bot: ImpastoBot) -> None:
    fake.rate_limit("PATCH", "/webhooks/", retry_after_s=0.2)
    record = await fake.slash("imagine", prompt_option("patient"))
    message = await fake.wait_message(lambda m: m["id"] == record.original_id and "Waiting" in m["content"])
    assert fake.rate_limited == [f"PATCH /webhooks/{1000000000000000001}/{record.token}/messages/@original"]
    assert message["content"] == f"**patient** - <@{ALICE}> (Waiting to start)"


async def test_a_429_on_a_channel_post_is_retried(fake: FakeDiscord, bot: ImpastoBot, stack: ServiceStack) -> None:
    grid = await imagine_grid(fake, stack)
    fake.rate_limit("POST", f"/channels/{grid['channel_id']}/messages", retry_after_s=0.2)
    await fake.press(grid["id"], fake.button(grid, "U3")["custom_id"])
    single = await fake.wait_message(lambda m: "Image #3" in m["content"])
    assert fake.rate_limited == [f"POST /channels/{grid['channel_id']}/messages"]
    assert single["attachments"]  # the multipart body was sent again, whole


@dataclass(frozen=True)
class WebFrontDoor:
    """What the bot needs of the web front door's settings (``IMPASTO_WEB_URL``, ``IMPASTO_WEB_SECRET``)."""

    web_url: str | None = "https://impasto.example"
    web_secret_value: str | None = "s3cret"


async def test_vary_region_opens_the_web_editor_for_the_presser_alone(
    fake: FakeDiscord, start_bot: Callable[..., Awaitable[ImpastoBot]], stack: ServiceStack
) -> None:
    await start_bot(web=WebFrontDoor())
    grid = await imagine_grid(fake, stack)
    await fake.press(grid["id"], fake.button(grid, "U2")["custom_id"])
    single = await fake.wait_message(lambda m: "Image #2" in m["content"])
    picked = await shown(fake, stack, single)
    record = await fake.press(single["id"], fake.button(single, "Vary (Region)")["custom_id"], user_id=BOB)
    await fake.wait_for(lambda: record.callback)
    assert record.callback is not None
    assert record.callback["type"] == 4  # answered at once, with a message
    data = record.callback["data"]
    assert data["flags"] & 64  # only the presser sees it
    [link] = [item for row in data["components"] for item in row["components"]]
    assert link["style"] == 5  # a link button
    assert link["url"].startswith("https://impasto.example/")
    token = parse_qs(urlparse(link["url"]).query)["t"][0]
    grant = verify("s3cret", token, "edit")
    assert (grant.platform, grant.user_id, grant.job_id) == ("discord", str(BOB), picked.job_id)
    assert grant.message_id == single["id"]  # the result replies to the pressed message
    assert grant.lang == "en"  # the editor opens in the presser's reply language


@dataclass
class NoiseRenderer(NoopRenderer):
    """The no-op renderer painting ``side``² noise tiles, as the tiny models do: at 256², a grid PNG of about 800 kB."""

    side: int = 256

    def render(self, work: RenderWork, progress: ProgressFn) -> RenderResult:
        flat = super().render(work, progress)
        rng = random.Random(flat.seed)
        side = self.side
        tiles = [Image.frombytes("RGB", (side, side), rng.randbytes(side * side * 3)) for _ in flat.images]

        def png(image: Image.Image) -> bytes:
            out = io.BytesIO()
            image.save(out, format="PNG")
            return out.getvalue()

        return dataclasses.replace(
            flat, images=tuple(png(t) for t in tiles), grid=png(compose_grid(tiles)), width=side, height=side
        )


async def test_a_result_past_the_upload_limit_arrives_in_a_smaller_form(
    fake: FakeDiscord, bot: ImpastoBot, stack: ServiceStack
) -> None:
    stack.renderer_factory = lambda: NoiseRenderer(steps=1)
    # Discord's limit is lower than the bot believes (a server lost its boost): every larger upload gets 413 / 40005.
    fake.upload_limit = 300_000
    grid = await imagine_grid(fake, stack)
    data = fake.attachment_bytes(grid)
    assert len(data) <= 300_000
    assert data.startswith(b"\xff\xd8")  # a JPEG for viewing
    assert "full resolution: 512×512 PNG" in grid["content"]
    assert "the full PNG is kept" in grid["content"]  # no web front door here: no download link to give
    refused = [r for r in fake.requests if r.files and any(len(d) > 300_000 for _n, d in r.files)]
    assert refused, "the PNG was tried first"
    # The full PNG is kept, byte for byte, in the image store.
    view = await shown(fake, stack, grid)
    stored = view.image(0)
    assert stored is not None
    assert stack.images.get(stored.key).startswith(b"\x89PNG")
    # One result message, completed once: its buttons are there.
    assert fake.button(grid, "U1")


async def test_a_region_job_from_the_web_editor_is_posted_as_a_reply(
    fake: FakeDiscord, bot: ImpastoBot, stack: ServiceStack
) -> None:
    grid = await imagine_grid(fake, stack)
    await fake.press(grid["id"], fake.button(grid, "U2")["custom_id"])
    single = await fake.wait_message(lambda m: "Image #2" in m["content"])
    picked = await shown(fake, stack, single)
    # What the web front door does on Submit: a region job through the core, and where its result goes.
    who = Requester("discord", ALICE, guild_id=GUILD_ID, channel_id=single["channel_id"])
    mask = io.BytesIO()
    Image.new("L", (32, 32), 255).save(mask, format="PNG")
    pressed = await stack.service.press(
        who, picked.job_id, Action.VARY_REGION, idempotency_key="web-1", mask_key=stack.images.put(mask.getvalue())
    )
    region_id = pressed.view.job_id
    await stack.service.record_message(
        region_id, "discord", single["channel_id"], reply_to_row(region_id, single["id"]), REPLY_TO
    )
    await stack.drain()
    reply = await reply_to(fake, single["id"])
    result = await fake.wait_message(lambda m: m["id"] == reply["id"] and bool(m["components"]))
    assert "Variations (Region)" in result["content"]
    assert (await shown(fake, stack, result)).job_id == region_id
    # The pressed message still shows (and serves the buttons of) its own job.
    assert (await shown(fake, stack, single)).job_id == picked.job_id


MODERATOR = str(int(PERMISSIONS) | 1 << 13)  # a member's usual rights, with Manage Messages


async def test_moderators_ban_members_and_add_words(
    fake: FakeDiscord, start_bot: Callable[..., Awaitable[ImpastoBot]], stack: ServiceStack
) -> None:
    policy = load_policy()
    # The service checks prompts as ``runtime.job_service`` builds it; the bot gets the /mod commands.
    stack.service.admission.checks.append(ModerationCheck(stack.service.sessions, policy))
    await start_bot(moderation=policy)
    # A member without Manage Messages is told so (Discord hides /mod from them unless the server changed that).
    record = await fake.slash("mod", [{"name": "words", "type": 1, "options": []}], user_id=BOB)
    refused = await fake.wait_message(lambda m: m["id"] == record.original_id and m["content"].startswith("⚠️"))
    assert "Manage Messages" in refused["content"]

    bob = user_payload(BOB)
    member = {"roles": [], "joined_at": "2024-01-01T00:00:00+00:00", "flags": 0, "permissions": PERMISSIONS}
    ban = [{"name": "ban", "type": 1, "options": [{"name": "member", "type": 6, "value": BOB}]}]
    record = await fake.slash(
        "mod", ban, resolved={"users": {BOB: bob}, "members": {BOB: member}}, permissions=MODERATOR
    )
    done = await fake.wait_message(lambda m: m["id"] == record.original_id and "banned" in m["content"])
    assert done["flags"] & 64  # for the moderator alone
    record = await fake.slash("imagine", prompt_option("a quiet harbour"), user_id=BOB)
    refused = await fake.wait_message(lambda m: m["id"] == record.original_id and m["content"].startswith("⚠️"))
    assert "banned" in refused["content"]

    word = [{"name": "word_add", "type": 1, "options": [{"name": "word", "type": 3, "value": "lighthouse"}]}]
    record = await fake.slash("mod", word, permissions=MODERATOR)
    await fake.wait_message(lambda m: m["id"] == record.original_id and "lighthouse" in m["content"])
    record = await fake.slash("imagine", prompt_option("a lighthouse at dusk"))
    refused = await fake.wait_message(lambda m: m["id"] == record.original_id and m["content"].startswith("⚠️"))
    assert "lighthouse" not in refused["content"]  # the category is named, never the word
    async with stack.service.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Job)) == 0  # nothing made, nothing charged
