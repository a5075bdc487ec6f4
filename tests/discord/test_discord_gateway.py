"""The real discord.py client against the fake Discord: connect, sync commands, answer a slash command in time."""

from __future__ import annotations

import asyncio

import pytest
from discord_stack import ServiceStack
from fake_discord import ALICE, CHANNEL_ID, GUILD_ID, FakeDiscord

from impasto.bots.discord.app import ImpastoBot, intents
from impasto.bots.discord.endpoints import rest_root
from impasto.bots.service.requester import Requester


async def test_connects_and_syncs_every_command_globally(fake: FakeDiscord, bot: ImpastoBot) -> None:
    assert fake.identified == 1
    names = {c["name"] for c in fake.synced_commands["global"]}
    assert names >= {
        "imagine", "blend", "describe", "settings", "prefer", "info", "fast", "relax", "turbo", "public", "stealth",
        "show", "history", "help",
    }  # fmt: skip
    imagine = next(c for c in fake.synced_commands["global"] if c["name"] == "imagine")
    prompt = imagine["options"][0]
    assert (prompt["name"], prompt["type"], prompt["required"]) == ("prompt", 3, True)
    assert prompt["description"]
    blend = next(c for c in fake.synced_commands["global"] if c["name"] == "blend")
    dims = next(o for o in blend["options"] if o["name"] == "dimensions")
    assert [c["value"] for c in dims["choices"]] == ["portrait", "square", "landscape"]
    prefer = next(c for c in fake.synced_commands["global"] if c["name"] == "prefer")
    assert {o["name"] for o in prefer["options"]} == {"suffix", "remix", "option"}


async def test_syncs_to_the_test_guild_only(fake: FakeDiscord, start_bot) -> None:  # type: ignore[no-untyped-def]
    await start_bot(test_guild=int(GUILD_ID))
    assert "global" not in fake.synced_commands
    assert "imagine" in {c["name"] for c in fake.synced_commands[GUILD_ID]}


def test_asks_for_no_privileged_intent() -> None:
    wanted = intents()
    assert not wanted.members
    assert not wanted.presences
    assert not wanted.message_content
    assert (wanted.guilds, wanted.guild_reactions, wanted.dm_reactions) == (True, True, True)


def test_rest_root_adds_the_api_version() -> None:
    assert rest_root(None) == "https://discord.com/api/v10"
    assert rest_root("http://proxy:8080/api") == "http://proxy:8080/api/v10"
    assert rest_root("http://proxy:8080/api/v9/") == "http://proxy:8080/api/v9"
    with pytest.raises(ValueError, match="http"):
        rest_root("proxy:8080")


async def test_imagine_is_deferred_then_answered(fake: FakeDiscord, bot: ImpastoBot, stack: ServiceStack) -> None:
    record = await fake.slash("imagine", [{"name": "prompt", "type": 3, "value": "a lighthouse"}])
    await fake.wait_for(lambda: record.callback)
    assert record.callback == {"type": 5}  # deferred with "thinking"
    message = await fake.wait_message(lambda m: "Waiting to start" in m["content"])
    assert message["id"] == record.original_id
    assert message["content"] == f"**a lighthouse** - <@{4000000000000000001}> (Waiting to start)"
    assert message["channel_id"] == CHANNEL_ID
    # The bot records which job the message shows right after posting it: poll for it, with a bound.
    shown = None
    for _ in range(500):
        shown = await stack.service.find_job_by_message("discord", CHANNEL_ID, message["id"])
        if shown is not None:
            break
        await asyncio.sleep(0.02)
    assert shown is not None
    assert (shown.guild_id, shown.platform, shown.user_id) == (GUILD_ID, "discord", ALICE)
    # The interaction id is the request's idempotency key: the same interaction again makes no second job.
    who = Requester(platform="discord", user_id=ALICE, display_name="alice", guild_id=GUILD_ID, channel_id=CHANNEL_ID)
    again = await stack.service.imagine(who, "a lighthouse", idempotency_key=f"discord:{record.id}")
    assert [(t.job_id, t.duplicate) for t in again] == [(shown.job_id, True)]


async def test_auto_sharded_client_connects(fake: FakeDiscord, start_bot) -> None:  # type: ignore[no-untyped-def]
    from impasto.bots.discord.app import ShardedImpastoBot

    bot = await start_bot(shards=1)
    assert isinstance(bot, ShardedImpastoBot)
    assert bot.shard_count == 1
    record = await fake.slash("help")
    await fake.wait_for(lambda: record.callback)
