"""Whole conversations through the real discord.py client and the fake Discord, with the stand-in backend."""

from __future__ import annotations

import io
from typing import Any

from fake_discord import ALICE, BOB, DM_CHANNEL_ID, NSFW_CHANNEL_ID, FakeDiscord
from PIL import Image
from stand_in import StandInBackend, png

from impasto.bots.discord.app import ImpastoBot
from impasto.bots.discord.backend import Failed, Progress
from impasto.bots.discord.custom_ids import ButtonId
from impasto.queue.actions import Action

Json = dict[str, Any]
PRIMARY, SECONDARY = 1, 2


def prompt_option(text: str) -> list[Json]:
    return [{"name": "prompt", "type": 3, "value": text}]


async def imagine_grid(fake: FakeDiscord, backend: StandInBackend, text: str = "a lighthouse", **kw: Any) -> Json:
    """/imagine, then the worker's progress and completion: returns the grid message."""
    record = await fake.slash("imagine", prompt_option(text), **kw)
    await fake.wait_for(lambda: backend.called("record_message"))
    job_id = backend.called("record_message")[-1].args["job"]
    backend.emit(job_id, Progress(37, png("gray")))
    await fake.wait_message(lambda m: "(37%) (fast)" in m["content"])
    backend.finish(job_id)
    return await fake.wait_message(lambda m: m["id"] == record.original_id and m["components"])


async def test_imagine_progress_then_grid_with_buttons(
    fake: FakeDiscord, bot: ImpastoBot, backend: StandInBackend
) -> None:
    grid = await imagine_grid(fake, backend)
    assert grid["content"] == f"**a lighthouse** - <@{ALICE}> (fast)"
    rows = [[b.get("label") or b["emoji"]["name"] for b in row["components"]] for row in grid["components"]]
    assert rows == [["U1", "U2", "U3", "U4", "🔄"], ["V1", "V2", "V3", "V4"]]
    assert fake.button(grid, "U2")["custom_id"] == "imp:u:2:job1"
    assert len(grid["attachments"]) == 1
    with Image.open(io.BytesIO(fake.attachment_bytes(grid))) as image:
        assert image.size == (16, 16)
    assert grid["allowed_mentions"] == {"parse": []}
    assert not grid["attachments"][0]["filename"].startswith("SPOILER_")


async def test_everyone_in_a_prompt_pings_nobody(fake: FakeDiscord, bot: ImpastoBot, backend: StandInBackend) -> None:
    grid = await imagine_grid(fake, backend, "@everyone look <@&2000000000000000099> **bold**")
    assert "@everyone" not in grid["content"]
    assert "<@&2000000000000000099>" not in grid["content"]
    assert "\\*\\*bold\\*\\*" in grid["content"]
    for message in fake.messages.values():
        if message["content"]:
            assert message["allowed_mentions"] == {"parse": []}


async def test_bad_input_is_one_line_naming_the_problem(
    fake: FakeDiscord, bot: ImpastoBot, backend: StandInBackend
) -> None:
    record = await fake.slash("imagine", prompt_option("a cat --ar 0:1"))
    message = await fake.wait_message(lambda m: m["id"] == record.original_id and m["content"])
    assert message["content"].startswith("⚠️ ")
    assert "--ar 0:1: both sides must be positive" in message["content"]
    assert "\n" not in message["content"]


async def test_imagine_in_a_dm(fake: FakeDiscord, bot: ImpastoBot, backend: StandInBackend) -> None:
    grid = await imagine_grid(fake, backend, "a dm cat", dm=True)
    assert grid["channel_id"] == DM_CHANNEL_ID
    who = backend.called("imagine")[0].who
    assert who is not None
    assert who.guild_id is None
    # A button on a DM grid: the result is a reply in the DM.
    await fake.press(grid["id"], fake.button(grid, "U1")["custom_id"])
    single = await fake.wait_message(lambda m: "Image #1" in m["content"])
    assert single["channel_id"] == DM_CHANNEL_ID


async def test_imagine_with_an_image_prompt(fake: FakeDiscord, bot: ImpastoBot, backend: StandInBackend) -> None:
    attachment = fake.add_attachment("ref.png", png("yellow", 32))
    options = [*prompt_option("like this"), {"name": "image", "type": 11, "value": attachment["id"]}]
    record = await fake.slash("imagine", options, attachments=[attachment])
    await fake.wait_for(lambda: backend.called("imagine"))
    assert backend.called("imagine")[0].args["images"] == [png("yellow", 32)]
    assert record.callback == {"type": 5}


async def test_a_non_image_attachment_is_refused(fake: FakeDiscord, bot: ImpastoBot, backend: StandInBackend) -> None:
    attachment = fake.add_attachment("notes.txt", b"hello", "text/plain")
    options = [*prompt_option("like this"), {"name": "image", "type": 11, "value": attachment["id"]}]
    record = await fake.slash("imagine", options, attachments=[attachment])
    message = await fake.wait_message(lambda m: m["id"] == record.original_id and m["content"])
    assert "notes.txt" in message["content"]
    assert "only PNG, JPEG, WebP or GIF" in message["content"]
    assert not backend.called("imagine")


async def test_permutations_post_one_message_per_job(
    fake: FakeDiscord, bot: ImpastoBot, backend: StandInBackend
) -> None:
    await fake.slash("imagine", prompt_option("a {a, b} cat"))
    await fake.wait_for(lambda: len(backend.called("record_message")) == 2)
    contents = sorted(m["content"] for m in fake.messages.values() if "Waiting" in m["content"])
    assert contents == [f"**a a cat** - <@{ALICE}> (Waiting to start)", f"**a b cat** - <@{ALICE}> (Waiting to start)"]


async def test_every_grid_button(fake: FakeDiscord, bot: ImpastoBot, backend: StandInBackend) -> None:
    grid = await imagine_grid(fake, backend)
    for label in ("U1", "U2", "U3", "U4", "🔄", "V1", "V2", "V3", "V4"):
        custom_id = fake.button(grid, label)["custom_id"]
        record = await fake.press(grid["id"], custom_id, user_id=BOB)
        await fake.wait_for(lambda r=record: r.callback)
        assert record.callback is not None
        assert record.callback["type"] == 7  # the press is acknowledged by editing the source message...
        grid = fake.messages[grid["id"]]
        assert fake.button(grid, label)["style"] == PRIMARY  # ...turning its button blue
        press = backend.called("press")[-1]
        assert press.who is not None
        assert press.who.user_id == BOB  # the presser is charged, not the grid's owner
        expected = ButtonId.decode(custom_id)
        assert (press.args["job"], press.args["action"], press.args["index"]) == (
            expected.job_id,
            expected.action,
            expected.index,
        )
    # U# replies with the single image at once; V#/🔄 reply with a new job's progress message.
    singles = [m for m in fake.messages.values() if "Image #" in m["content"]]
    assert sorted(m["content"] for m in singles) == sorted(
        f"**a lighthouse** - Image #{n} <@{BOB}>" for n in range(1, 5)
    )
    assert all(m["message_reference"]["message_id"] == grid["id"] for m in singles)
    await fake.wait_for(
        lambda: (
            len([m for m in fake.messages.values() if "Waiting" in m["content"] and m.get("message_reference")]) == 5
        )
    )
    assert fake.button(grid, "U1")["style"] == PRIMARY  # earlier presses stay blue


async def test_every_single_image_button(fake: FakeDiscord, bot: ImpastoBot, backend: StandInBackend) -> None:
    grid = await imagine_grid(fake, backend)
    await fake.press(grid["id"], fake.button(grid, "U2")["custom_id"])
    single = await fake.wait_message(lambda m: "Image #2" in m["content"])
    labels = [b.get("label") or b["emoji"]["name"] for b in fake.buttons(single)]
    assert labels == [
        "Upscale (Subtle)", "Upscale (Creative)", "Vary (Subtle)", "Vary (Strong)",
        "Zoom Out 2x", "Zoom Out 1.5x", "Custom Zoom", "Make Square", "⬅️", "➡️", "⬆️", "⬇️", "❤️", "Details",
    ]  # fmt: skip
    # Vary (Region) needs a mask editor, which no platform offers without the web front door: no button.
    for label in labels:
        if label in ("Custom Zoom", "Details"):
            continue  # a modal, a private answer: tested below and in the service tests
        before = len(fake.messages)
        record = await fake.press(single["id"], fake.button(single, label)["custom_id"], user_id=BOB)
        await fake.wait_for(lambda r=record: r.callback)
        assert record.callback is not None
        if label == "❤️":
            assert record.callback["type"] == 6
            notice = await fake.wait_message(lambda m: "favorites" in m["content"])
            assert notice["flags"] & 64
        else:
            await fake.wait_for(lambda n=before: len(fake.messages) > n)
            reply = list(fake.messages.values())[-1]
            assert reply["message_reference"]["message_id"] == single["id"]
            assert "Waiting to start" in reply["content"]


async def test_a_job_message_from_a_finished_render_becomes_a_single_result(
    fake: FakeDiscord, bot: ImpastoBot, backend: StandInBackend
) -> None:
    grid = await imagine_grid(fake, backend)
    await fake.press(grid["id"], fake.button(grid, "U2")["custom_id"])
    single = await fake.wait_message(lambda m: "Image #2" in m["content"])
    await fake.press(single["id"], fake.button(single, "Upscale (Subtle)")["custom_id"])
    reply = await fake.wait_message(lambda m: m.get("message_reference", {}).get("message_id") == single["id"])
    job_id = backend.called("press")[-1].args["job"]
    new_job = next(c for c in backend.called("record_message") if c.args["message"] == reply["id"]).args["job"]
    assert new_job != job_id
    backend.finish(new_job)
    done = await fake.wait_message(lambda m: m["id"] == reply["id"] and m["components"])
    assert done["content"] == f"**a lighthouse** - Upscaled <@{ALICE}>"
    assert fake.button(done, "Vary (Subtle)")["custom_id"] == f"imp:vs:1:{new_job}"


async def test_a_button_from_before_a_restart_still_works(
    fake: FakeDiscord, start_bot, backend: StandInBackend
) -> None:  # type: ignore[no-untyped-def]
    first = await start_bot(backend)
    grid = await imagine_grid(fake, backend)
    await first.close()
    await fake.drop_connections()
    await start_bot(backend)  # a new client (nothing in memory from the first), the same service
    assert fake.identified == 2
    await fake.press(grid["id"], fake.button(grid, "V3")["custom_id"], user_id=BOB)
    reply = await fake.wait_message(lambda m: m.get("message_reference", {}).get("message_id") == grid["id"])
    assert "Waiting to start" in reply["content"]
    assert backend.called("press")[-1].args["action"] is Action.VARIATION


async def test_remix_modal_edits_the_prompt_first(fake: FakeDiscord, bot: ImpastoBot, backend: StandInBackend) -> None:
    grid = await imagine_grid(fake, backend)
    backend.remix = True
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
    assert backend.called("press")[-1].args["remix_text"] == "a lighthouse in snow"
    assert fake.button(fake.messages[grid["id"]], "V1")["style"] == PRIMARY


async def test_custom_zoom_modal_carries_zoom(fake: FakeDiscord, bot: ImpastoBot, backend: StandInBackend) -> None:
    grid = await imagine_grid(fake, backend)
    await fake.press(grid["id"], fake.button(grid, "U4")["custom_id"])
    single = await fake.wait_message(lambda m: "Image #4" in m["content"])
    record = await fake.press(single["id"], fake.button(single, "Custom Zoom")["custom_id"])
    await fake.wait_for(lambda: record.callback)
    assert record.callback is not None
    assert record.callback["data"]["title"] == "Zoom Out"
    field = record.callback["data"]["components"][0]["components"][0]
    assert field["value"] == "a lighthouse --zoom 2"
    await fake.submit_modal(record, {"prompt": "a lighthouse --zoom 1.6"})
    await fake.wait_for(lambda: backend.called("press")[-1].args["remix_text"] == "a lighthouse --zoom 1.6")
    assert backend.called("press")[-1].args["action"] is Action.ZOOM_CUSTOM


async def test_envelope_sends_details_by_dm(fake: FakeDiscord, bot: ImpastoBot, backend: StandInBackend) -> None:
    grid = await imagine_grid(fake, backend)
    await fake.react(grid["id"], "✉️", user_id=BOB)
    dm = await fake.wait_message(lambda m: m["content"].startswith("Job ID: job1"))
    assert dm["channel_id"] == f"9{BOB[1:]}"
    assert len(dm["attachments"]) == 2
    assert backend.called("details")[0].who.user_id == BOB  # type: ignore[union-attr]


async def test_cross_by_the_owner_deletes_and_by_others_does_nothing(
    fake: FakeDiscord, bot: ImpastoBot, backend: StandInBackend
) -> None:
    grid = await imagine_grid(fake, backend)
    await fake.react(grid["id"], "❌", user_id=BOB)
    await fake.wait_for(lambda: backend.called("cancel_or_delete"))
    assert grid["id"] in fake.messages
    await fake.react(grid["id"], "❌", user_id=ALICE)
    await fake.wait_for(lambda: grid["id"] not in fake.messages)


async def test_cross_on_a_running_job_shows_it_stopped(
    fake: FakeDiscord, bot: ImpastoBot, backend: StandInBackend
) -> None:
    record = await fake.slash("imagine", prompt_option("slow one"))
    await fake.wait_for(lambda: backend.called("record_message"))
    backend.emit("job1", Failed("cancelled by its owner", cancelled=True))
    message = await fake.wait_message(lambda m: m["id"] == record.original_id and "(Stopped)" in m["content"])
    assert message["content"] == f"**slow one** - <@{ALICE}> (Stopped)"


async def test_flagged_results_are_spoilers_outside_nsfw_channels(
    fake: FakeDiscord, bot: ImpastoBot, backend: StandInBackend
) -> None:
    for channel, spoiler in ((None, True), (NSFW_CHANNEL_ID, False)):
        kw = {"channel_id": channel} if channel else {}
        record = await fake.slash("imagine", prompt_option(f"flag {channel}"), **kw)
        await fake.wait_for(lambda r=record: r.original_id and fake.messages[r.original_id]["content"])
        job_id = backend.called("imagine")[-1] and list(backend.cards)[-1]
        backend.finish(job_id, flagged=True)
        done = await fake.wait_message(lambda m, r=record: m["id"] == r.original_id and m["attachments"])
        assert done["attachments"][0]["filename"].startswith("SPOILER_") is spoiler


async def test_settings_panel_and_its_controls(fake: FakeDiscord, bot: ImpastoBot, backend: StandInBackend) -> None:
    record = await fake.slash("settings")
    await fake.wait_for(lambda: record.callback)
    assert record.callback == {"type": 5, "data": {"flags": 64}}
    panel = await fake.wait_message(lambda m: m["id"] == record.original_id and m["components"])
    assert panel["flags"] & 64
    select = panel["components"][0]["components"][0]
    assert select["custom_id"] == "imp:set:model"
    assert [o["value"] for o in select["options"]] == ["v6", "v5", "niji6"]
    remix = fake.button(panel, "Remix mode")
    assert remix["style"] == SECONDARY
    await fake.press(panel["id"], remix["custom_id"])
    await fake.wait_for(lambda: fake.button(fake.messages[panel["id"]], "Remix mode")["style"] == 3)
    await fake.press(panel["id"], "imp:set:model", values=["niji6"])
    await fake.wait_for(lambda: backend.called("update_setting")[-1].args == {"key": "model", "value": "niji6"})

    def chosen() -> list[str]:
        select = fake.messages[panel["id"]]["components"][0]["components"][0]
        return [o["value"] for o in select["options"] if o.get("default")]

    await fake.wait_for(lambda: chosen() == ["niji6"])


async def test_blend_takes_two_to_five_images(fake: FakeDiscord, bot: ImpastoBot, backend: StandInBackend) -> None:
    a = fake.add_attachment("a.png", png("red"))
    b = fake.add_attachment("b.png", png("blue"))
    options = [
        {"name": "image1", "type": 11, "value": a["id"]},
        {"name": "image2", "type": 11, "value": b["id"]},
        {"name": "dimensions", "type": 3, "value": "portrait"},
    ]
    await fake.slash("blend", options, attachments=[a, b])
    await fake.wait_for(lambda: backend.called("blend"))
    call = backend.called("blend")[0]
    assert call.args == {"images": [png("red"), png("blue")], "dimensions": "portrait"}
    await fake.wait_message(lambda m: "**blend**" in m["content"] and "Waiting" in m["content"])


async def test_text_commands_answer_privately(fake: FakeDiscord, bot: ImpastoBot, backend: StandInBackend) -> None:
    def sub(name: str, options: list[Json], kind: int = 1) -> Json:
        return {"name": name, "type": kind, "options": options}

    def text(name: str, value: str) -> Json:
        return {"name": name, "type": 3, "value": value}

    option_set = sub("option", [sub("set", [text("option", "mine"), text("value", "--ar 7:4")])], 2)
    cases = [
        ("info", [], "info", ""),
        ("fast", [], "fast", ""),
        ("relax", [], "relax", ""),
        ("turbo", [], "turbo", ""),
        ("public", [], "public", ""),
        ("stealth", [], "stealth", ""),
        ("history", [], "history", ""),
        ("prefer", [sub("suffix", [text("new_value", "--ar 2:3")])], "prefer_suffix", "--ar 2:3"),
        ("prefer", [sub("remix", [])], "prefer_remix", ""),
        ("prefer", [option_set], "prefer_option_set", "mine --ar 7:4"),
        ("prefer", [sub("option", [sub("list", [])], 2)], "prefer_option_list", ""),
    ]
    for name, options, command, argument in cases:
        record = await fake.slash(name, options)
        message = await fake.wait_message(lambda m, r=record: m["id"] == r.original_id and m["content"])
        assert message["flags"] & 64
        call = backend.called("command")[-1]
        assert (call.args["name"], call.args["argument"]) == (command, argument)


async def test_describe_is_refused_with_a_reason(fake: FakeDiscord, bot: ImpastoBot, backend: StandInBackend) -> None:
    a = fake.add_attachment("a.png", png("red"))
    record = await fake.slash("describe", [{"name": "image", "type": 11, "value": a["id"]}], attachments=[a])
    message = await fake.wait_message(lambda m: m["id"] == record.original_id and m["content"])
    assert "captioning model" in message["content"]


async def test_help_and_show(fake: FakeDiscord, bot: ImpastoBot, backend: StandInBackend) -> None:
    record = await fake.slash("help")
    await fake.wait_for(lambda: record.callback)
    assert record.callback is not None
    assert record.callback["type"] == 4
    grid = await imagine_grid(fake, backend)
    record = await fake.slash("show", [{"name": "job_id", "type": 3, "value": "job1"}], user_id=ALICE)
    shown = await fake.wait_message(lambda m: m["id"] == record.original_id and m["components"])
    assert fake.button(shown, "U1")["custom_id"] == fake.button(grid, "U1")["custom_id"]
    record = await fake.slash("show", [{"name": "job_id", "type": 3, "value": "nope"}])
    refused = await fake.wait_message(lambda m: m["id"] == record.original_id and m["content"])
    assert refused["content"] == "⚠️ no job nope"


async def test_a_429_from_rest_is_waited_out(fake: FakeDiscord, bot: ImpastoBot, backend: StandInBackend) -> None:
    fake.rate_limit("PATCH", "/webhooks/", retry_after_s=0.2)
    record = await fake.slash("imagine", prompt_option("patient"))
    message = await fake.wait_message(lambda m: m["id"] == record.original_id and "Waiting" in m["content"])
    assert fake.rate_limited == [f"PATCH /webhooks/{1000000000000000001}/{record.token}/messages/@original"]
    assert message["content"] == f"**patient** - <@{ALICE}> (Waiting to start)"


async def test_a_429_on_a_channel_post_is_retried(fake: FakeDiscord, bot: ImpastoBot, backend: StandInBackend) -> None:
    grid = await imagine_grid(fake, backend)
    fake.rate_limit("POST", f"/channels/{grid['channel_id']}/messages", retry_after_s=0.2)
    await fake.press(grid["id"], fake.button(grid, "U3")["custom_id"])
    single = await fake.wait_message(lambda m: "Image #3" in m["content"])
    assert fake.rate_limited == [f"POST /channels/{grid['channel_id']}/messages"]
    assert single["attachments"]  # the multipart body was sent again, whole
