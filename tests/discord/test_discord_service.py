"""Whole sessions on the real job service, Redis queue, worker and event stream, through the real discord.py client."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from discord_stack import ServiceStack, service_stack
from fake_discord import ALICE, BOB, CHANNEL_ID, FakeDiscord
from PIL import Image

from impasto.bots.discord.app import ImpastoBot
from impasto.bots.service.delivery.core import Delivery

Json = dict[str, Any]
pytestmark = pytest.mark.slow


@pytest.fixture(params=["sqlite", "postgresql"])
async def stack(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ServiceStack]:
    async with service_stack(tmp_path, request.param) as stack:
        yield stack


@pytest.fixture
async def live(start_bot, stack: ServiceStack) -> ImpastoBot:  # type: ignore[no-untyped-def]
    bot: ImpastoBot = await start_bot(consumer="live")
    return bot


def image_size(fake: FakeDiscord, message: Json) -> tuple[int, int]:
    with Image.open(io.BytesIO(fake.attachment_bytes(message))) as image:
        return image.size


async def rendered(fake: FakeDiscord, stack: ServiceStack, message_id: str) -> Json:
    """Run the worker, then wait for ``message_id`` to become a result with buttons."""
    await fake.wait_message(lambda m: m["id"] == message_id and "Waiting to start" in m["content"])
    await stack.drain()
    return await fake.wait_message(lambda m: m["id"] == message_id and bool(m["components"]))


async def reply_to(fake: FakeDiscord, source_id: str) -> Json:
    return await fake.wait_message(lambda m: m.get("message_reference", {}).get("message_id") == source_id)


async def test_imagine_u2_zoom_out_v1(fake: FakeDiscord, live: ImpastoBot, stack: ServiceStack) -> None:
    record = await fake.slash("imagine", [{"name": "prompt", "type": 3, "value": "a lighthouse --ar 3:2"}])
    grid = await rendered(fake, stack, record.original_id or await fake.wait_for(lambda: record.original_id))
    assert grid["content"].startswith("**a lighthouse --ar 3:2")
    caption, note = grid["content"].split("\n")
    assert caption.endswith(f"<@{ALICE}> (fast)")
    assert note == "-# made by a built-in tiny test model: the picture is noise"
    assert image_size(fake, grid) == (64, 64)  # the no-op renderer's 2×2 of 32 px tiles
    job_id = fake.button(grid, "U2")["custom_id"].rsplit(":", 1)[1]
    assert (await stack.service.job(job_id)).status == "done"

    await fake.press(grid["id"], fake.button(grid, "U2")["custom_id"], user_id=BOB)
    single = await reply_to(fake, grid["id"])
    assert "Image #2" in single["content"]
    assert image_size(fake, single) == (32, 32)

    await fake.press(single["id"], fake.button(single, "Zoom Out 2x")["custom_id"], user_id=BOB)
    zoomed = await rendered(fake, stack, (await reply_to(fake, single["id"]))["id"])
    assert "Zoom Out 2x by" in zoomed["content"]
    zoom_job = fake.button(zoomed, "V1")["custom_id"].rsplit(":", 1)[1]
    view = await stack.service.job(zoom_job)
    assert (view.action, view.user_id) == ("z2", BOB)  # the presser owns and pays for it

    await fake.press(zoomed["id"], fake.button(zoomed, "V1")["custom_id"])
    varied = await rendered(fake, stack, (await reply_to(fake, zoomed["id"]))["id"])
    assert "Variations (Strong) by" in varied["content"]
    assert fake.button(fake.messages[zoomed["id"]], "V1")["style"] == 1


async def test_remix_settings_info_and_reactions(fake: FakeDiscord, live: ImpastoBot, stack: ServiceStack) -> None:
    record = await fake.slash("imagine", [{"name": "prompt", "type": 3, "value": "a fox"}])
    grid = await rendered(fake, stack, await fake.wait_for(lambda: record.original_id))

    # /prefer remix, then V3 asks for the prompt first.
    record = await fake.slash("prefer", [{"name": "remix", "type": 1, "options": []}])
    await fake.wait_message(lambda m: m["id"] == record.original_id and "Remix mode turned on" in m["content"])
    press = await fake.press(grid["id"], fake.button(grid, "V3")["custom_id"])
    await fake.wait_for(lambda: press.callback)
    assert press.callback is not None
    assert press.callback["type"] == 9
    await fake.submit_modal(press, {"prompt": "a fox in snow"})
    remixed = await rendered(fake, stack, (await reply_to(fake, grid["id"]))["id"])
    assert remixed["content"].startswith("**a fox in snow")

    # /settings shows remix on; the model dropdown lists the registry.
    record = await fake.slash("settings")
    panel = await fake.wait_message(lambda m: m["id"] == record.original_id and bool(m["components"]))
    assert fake.button(panel, "Remix mode")["style"] == 3
    await fake.press(panel["id"], fake.button(panel, "Turbo mode")["custom_id"])
    await fake.wait_for(lambda: fake.button(fake.messages[panel["id"]], "Turbo mode")["style"] == 3, 10)

    record = await fake.slash("info")
    info = await fake.wait_message(lambda m: m["id"] == record.original_id and "**Job Mode**" in m["content"])
    assert "**Job Mode**: Turbo" in info["content"]

    # ✉️ by anyone: details and the four images by DM; ❌ by a stranger does nothing, by the owner deletes.
    await fake.react(grid["id"], "✉️", user_id=BOB)
    dm = await fake.wait_message(lambda m: m["content"].startswith("**Job ID**"))
    assert len(dm["attachments"]) == 4
    await fake.react(grid["id"], "❌", user_id=BOB)
    await fake.react(grid["id"], "❌", user_id=ALICE)
    await fake.wait_for(lambda: grid["id"] not in fake.messages)


async def test_bad_prompt_and_blend(fake: FakeDiscord, live: ImpastoBot, stack: ServiceStack) -> None:
    record = await fake.slash("imagine", [{"name": "prompt", "type": 3, "value": "a cat --ar 0:1"}])
    refused = await fake.wait_message(lambda m: m["id"] == record.original_id and m["content"].startswith("⚠️"))
    assert "--ar" in refused["content"]

    def png(color: str) -> bytes:
        buffer = io.BytesIO()
        Image.new("RGB", (48, 48), color).save(buffer, "PNG")
        return buffer.getvalue()

    a, b = fake.add_attachment("a.png", png("red")), fake.add_attachment("b.png", png("blue"))
    options = [{"name": "image1", "type": 11, "value": a["id"]}, {"name": "image2", "type": 11, "value": b["id"]}]
    record = await fake.slash("blend", options, attachments=[a, b])
    blended = await rendered(fake, stack, await fake.wait_for(lambda: record.original_id))
    assert len(fake.buttons(blended)) == 9

    # /imagine with an attachment: the service fetches it from Discord's CDN into the store for the worker.
    c = fake.add_attachment("c.png", png("green"))
    options = [{"name": "prompt", "type": 3, "value": "like this"}, {"name": "image", "type": 11, "value": c["id"]}]
    record = await fake.slash("imagine", options, attachments=[c])
    grid = await rendered(fake, stack, await fake.wait_for(lambda: record.original_id))
    job = await stack.service.job(fake.button(grid, "U1")["custom_id"].rsplit(":", 1)[1])
    [key] = job.params["image_prompts"]
    assert stack.images.get(str(key)) == png("green")


async def test_server_rules(fake: FakeDiscord, live: ImpastoBot, stack: ServiceStack) -> None:
    from fake_discord import CHANNEL_ID, GUILD_ID, MANAGER_PERMISSIONS, NSFW_CHANNEL_ID

    channel = {"id": CHANNEL_ID, "type": 0, "name": "general", "permissions": "0", "guild_id": GUILD_ID}
    options = [{"name": "allow", "type": 1, "options": [{"name": "channel", "type": 7, "value": CHANNEL_ID}]}]
    record = await fake.slash("server", options, resolved={"channels": {CHANNEL_ID: channel}}, permissions="0")
    refused = await fake.wait_message(lambda m: m["id"] == record.original_id and m["content"].startswith("⚠️"))
    assert "Manage Server" in refused["content"]

    record = await fake.slash(
        "server", options, resolved={"channels": {CHANNEL_ID: channel}}, permissions=MANAGER_PERMISSIONS
    )
    shown = await fake.wait_message(lambda m: m["id"] == record.original_id and "**Channels**" in m["content"])
    assert f"<#{CHANNEL_ID}>" in shown["content"]
    assert (await stack.service.guild("discord", GUILD_ID)).allowed_channels == (CHANNEL_ID,)

    record = await fake.slash(
        "imagine", [{"name": "prompt", "type": 3, "value": "elsewhere"}], channel_id=NSFW_CHANNEL_ID
    )
    refused = await fake.wait_message(lambda m: m["id"] == record.original_id and m["content"].startswith("⚠️"))
    assert "elsewhere" not in refused["content"]

    role = {"id": "6000000000000000001", "name": "patrons", "permissions": "0", "position": 1, "color": 0}
    role.update({"hoist": False, "managed": False, "mentionable": False})
    plan = next(iter(sorted(stack.service.plans.plans)))
    options = [
        {
            "name": "plan",
            "type": 1,
            "options": [{"name": "role", "type": 8, "value": role["id"]}, {"name": "plan", "type": 3, "value": plan}],
        }
    ]
    record = await fake.slash(
        "server", options, resolved={"roles": {role["id"]: role}}, permissions=MANAGER_PERMISSIONS
    )
    await fake.wait_message(lambda m: m["id"] == record.original_id and "**Role plans**" in m["content"])
    assert dict((await stack.service.guild("discord", GUILD_ID)).role_plans) == {role["id"]: plan}


async def test_cross_on_a_queued_job_stops_it_at_once(fake: FakeDiscord, live: ImpastoBot, stack: ServiceStack) -> None:
    record = await fake.slash("imagine", [{"name": "prompt", "type": 3, "value": "never mind"}])
    waiting = await fake.wait_message(lambda m: m["id"] == record.original_id and "Waiting" in m["content"])
    # The bot records which job the message shows right after posting it; a reaction before that finds no job.
    for _ in range(200):
        if await stack.service.find_job_by_message("discord", waiting["channel_id"], waiting["id"]):
            break
        await asyncio.sleep(0.02)
    await fake.react(waiting["id"], "❌", user_id=BOB)  # not the owner: nothing happens
    await fake.react(waiting["id"], "❌", user_id=ALICE)
    stopped = await fake.wait_message(lambda m: m["id"] == waiting["id"] and "(Stopped)" in m["content"])
    assert stopped["content"] == f"**never mind** - <@{ALICE}> (Stopped)"
    view = await stack.service.find_job_by_message("discord", waiting["channel_id"], waiting["id"])
    assert view is not None
    assert view.status == "cancelled"


async def test_a_job_that_ends_during_a_restart_still_gets_its_grid(
    fake: FakeDiscord,
    start_bot,
    stack: ServiceStack,  # type: ignore[no-untyped-def]
) -> None:
    first = await start_bot(consumer="first")
    record = await fake.slash("imagine", [{"name": "prompt", "type": 3, "value": "while you were out"}])
    await fake.wait_message(lambda m: m["id"] == record.original_id and "Waiting" in m["content"])
    for _ in range(200):  # the message is recorded right after it is posted
        if await stack.service.find_job_by_message("discord", CHANNEL_ID, record.original_id or ""):
            break
        await asyncio.sleep(0.02)
    await first.close()  # the process that posted the job's message is gone...
    await stack.drain()  # ...when the worker finishes it
    assert "Waiting" in fake.messages[record.original_id or ""]["content"]

    await start_bot(consumer="second")  # a new process: nothing in memory
    grid = await fake.wait_message(lambda m: m["id"] == record.original_id and bool(m["components"]))
    assert grid["content"].startswith(f"**while you were out** - <@{ALICE}> (fast)")
    assert len(grid["attachments"]) == 1


async def test_two_processes_hearing_one_result_post_it_once(
    fake: FakeDiscord,
    start_bot,
    stack: ServiceStack,  # type: ignore[no-untyped-def]
) -> None:
    """Two bot processes share the event group; while one handles the job's end, every other way of posting it runs
    in both at the same moment (a late "message recorded", a retry): the message changes once."""
    from contextlib import suppress

    from impasto.bots.discord.surface import DiscordSurface

    bot: ImpastoBot = await start_bot(consumer="first")
    # Another process's delivery core: its own consumer in the group, nothing shared but Discord's REST API (the fake
    # Discord has one gateway, so the other process is the core alone, editing with the same bot token).
    options = stack.bot_options()
    other = Delivery(
        stack.service,
        stack.pool,
        DiscordSurface(bot, stack.images),
        ns=stack.ns,
        group=stack.group,
        edit_interval_s=0,
        reclaim_idle_ms=options.reclaim_idle_ms,
        block_ms=options.events_block_ms,
    )
    running = asyncio.create_task(other.run(consumer="second"))
    try:
        await _post_once(fake, bot.delivery, other, stack)
    finally:
        running.cancel()
        with suppress(asyncio.CancelledError):
            await running


async def _post_once(fake: FakeDiscord, first: Delivery, second: Delivery, stack: ServiceStack) -> None:
    record = await fake.slash("imagine", [{"name": "prompt", "type": 3, "value": "heard twice"}])
    mid = record.original_id or await fake.wait_for(lambda: record.original_id)
    await fake.wait_message(lambda m: m["id"] == mid and "Waiting to start" in m["content"])
    view = None
    for _ in range(500):  # the message is recorded right after it is posted
        view = await stack.service.find_job_by_message("discord", CHANNEL_ID, mid)
        if view is not None:
            break
        await asyncio.sleep(0.02)
    assert view is not None
    await stack.drain()
    await asyncio.gather(
        *(delivery.shown(view.job_id) for delivery in (first, second)),
        *(delivery.deliver_end(view.job_id, paints_noise=True) for delivery in (first, second)),
    )
    await fake.wait_message(lambda m: m["id"] == mid and bool(m["components"]))
    await group_drained(stack)  # every event read and handled: nothing left that could post it again
    # The only job of the test: every edit carrying buttons is a posting of its result.
    finals = [r for r in fake.requests if r.method == "PATCH" and (r.body or {}).get("components")]
    assert len(finals) == 1


async def group_drained(stack: ServiceStack) -> None:
    for _ in range(500):
        groups = await stack.pool.xinfo_groups(stack.ns.events)
        [ours] = [
            g for g in groups if (g["name"].decode() if isinstance(g["name"], bytes) else g["name"]) == stack.group
        ]
        if ours["pending"] == 0 and ours.get("lag") == 0:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"the group still has work: {ours}")


async def test_jobs_past_the_concurrency_limit_say_job_queued(
    fake: FakeDiscord, live: ImpastoBot, stack: ServiceStack
) -> None:
    record = await fake.slash("imagine", [{"name": "prompt", "type": 3, "value": "a bee --repeat 4"}])
    notice = await fake.wait_message(lambda m: "Job queued" in m["content"])
    assert notice["flags"] & 64  # ephemeral: only the requester sees it
    assert notice["content"].startswith("⏳ Job queued: you have reached the maximum allowed number of concurrent jobs")
    assert await fake.wait_for(lambda: record.original_id)
    # Four messages follow the four jobs; the fourth starts once one of the first three has ended.
    waiting = [m for m in fake.messages.values() if "Waiting to start" in m["content"]]
    assert len(waiting) == 4
    await stack.drain()
    await fake.wait_for(lambda: sum(bool(m["components"]) for m in fake.messages.values()) == 4, 30)
