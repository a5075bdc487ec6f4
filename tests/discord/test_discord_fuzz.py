"""Property-based fuzzing of what Discord sends: INTERACTION_CREATE events through the fake gateway to the real
discord.py client and the real core. Slash commands with random, missing, wrong-typed and huge option values (and
commands that do not exist), button and select presses with random ``custom_id``s (ours in shape, with random parts,
and anything else), and modal submits with random fields (to a Remix modal the bot really opened, and to none).
Every interaction must be answered or ignored; none may raise out of a handler: any record logged at ERROR or with a
traceback (discord.py's "Ignoring exception in …", the tree's and views' ``on_error``, our ``report``, asyncio's
"Task exception was never retrieved", the loop's exception handler) fails the test.

Hypothesis draws the interactions (``IMPASTO_FUZZ_EXAMPLES``, default 30 here; set it higher for a longer run) from
the bot's own command tree, once the bot is up, and they are sent in one stream, as in ``test_telegram_fuzz.py``: a
failure names the interaction that raised, so no shrinking is needed to read it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import pytest
from discord import app_commands
from discord_stack import ServiceStack
from fake_discord import (
    ALICE,
    BOB,
    CHANNEL_ID,
    GUILD_ID,
    MANAGER_PERMISSIONS,
    NSFW_CHANNEL_ID,
    PERMISSIONS,
    FakeDiscord,
    InteractionRecord,
    user_payload,
)
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from test_discord_flows import imagine_grid, png, shown

from impasto.bots.discord.app import ImpastoBot
from impasto.bots.service.requester import Requester
from impasto.queue.actions import Action
from impasto.queue.moderation.policy import load_policy

pytestmark = [pytest.mark.timeout(600)]

EXAMPLES = int(os.environ.get("IMPASTO_FUZZ_EXAMPLES", "30"))
Json = dict[str, Any]
StartBot = Callable[..., Coroutine[Any, Any, ImpastoBot]]  # the start_bot fixture (conftest.py)

# No lone surrogates: Discord sends valid UTF-8, and JSON cannot carry them.
text = st.text(st.characters(exclude_categories=("Cs",)), max_size=200)
huge = st.text(st.characters(exclude_categories=("Cs",)), min_size=4000, max_size=7000)
flags = st.lists(
    st.sampled_from(["--ar 16:9", "--ar 0:0", "--ar 99999:1", "--v 6", "--niji 6", "--seed -1", "--stylize 1000000",
                     "--chaos 101", "--no", "--repeat 40", "--tile", "--q 0", "--", "—ar 3:2", "::", "{a,b}", "{{{",
                     "@everyone", "<@&2000000000000000001>", "https://127.0.0.1:6379/x.png"]),
    max_size=4,
)  # fmt: skip
prompt = st.one_of(text, huge, st.builds(lambda t, f: " ".join([t, *f]), text, flags))
snowflake = st.one_of(st.sampled_from([ALICE, BOB, CHANNEL_ID, GUILD_ID]), st.integers(1, 2**64 - 1).map(str))
wrong = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    text,
    st.lists(st.integers(), max_size=3),
    st.dictionaries(text, st.integers(), max_size=2),
)
ACTIONS = [a.value for a in Action]


@dataclass(frozen=True)
class Param:
    name: str
    type: int  # AppCommandOptionType
    required: bool
    choices: tuple[Any, ...]
    min_value: Any
    max_value: Any


@dataclass(frozen=True)
class Schema:
    path: tuple[str, ...]  # ("imagine",) or ("prefer", "option", "set")
    params: tuple[Param, ...]


def schemas_of(tree: app_commands.CommandTree[Any]) -> list[Schema]:
    found = []
    for command in tree.walk_commands():
        if isinstance(command, app_commands.Command):
            params = tuple(
                Param(
                    p.name,
                    p.type.value,
                    p.required,
                    tuple(c.value for c in p.choices),
                    p.min_value,
                    p.max_value,
                )
                for p in command.parameters
            )
            found.append(Schema(tuple(command.qualified_name.split()), params))
    return found


@dataclass
class Drawn:
    """One interaction to send: a slash command, a press, or a modal submit (``modal`` then names what opens it)."""

    kind: str
    data: Json
    user_id: str
    channel_id: str
    dm: bool
    permissions: str
    attachments: list[tuple[str, bytes, str]]  # (filename, bytes, content type) to put on the fake CDN first


@st.composite
def option_value(draw: st.DrawFn, param: Param, resolved: Json, files: list[tuple[str, bytes, str]]) -> Any:
    kind = param.type
    if kind == 3:
        if param.choices and draw(st.booleans()):
            return draw(st.sampled_from(param.choices))
        return draw(st.one_of(prompt, st.sampled_from(["", " ", "0", "30m", "7d", "-1h", "block", "default"])))
    if kind == 4:
        return draw(st.one_of(st.integers(-(2**63), 2**63), st.integers(-5, 100)))
    if kind == 5:
        return draw(st.booleans())
    if kind == 10:
        return draw(st.floats(allow_nan=False, allow_infinity=False))
    value = draw(snowflake)
    if draw(st.integers(0, 4)) == 0:
        return value  # nothing resolved: discord.py hands the command a bare Object
    if kind == 6:  # a user: a member in a server
        resolved.setdefault("users", {})[value] = user_payload(value, draw(text) or None)
        if draw(st.booleans()):
            member = {"roles": [], "joined_at": "2024-01-01T00:00:00+00:00", "flags": 0, "permissions": PERMISSIONS}
            resolved.setdefault("members", {})[value] = member
    elif kind == 7:
        channel_type = draw(st.sampled_from([0, 2, 4, 5, 13, 15]))
        resolved.setdefault("channels", {})[value] = {
            "id": value,
            "type": channel_type,
            "name": draw(text) or "c",
            "permissions": PERMISSIONS,
        }
    elif kind == 8:
        resolved.setdefault("roles", {})[value] = {
            "id": value,
            "name": draw(text) or "r",
            "permissions": PERMISSIONS,
            "position": 1,
            "color": 0,
            "hoist": False,
            "managed": False,
            "mentionable": False,
        }
    elif kind == 11:
        body = draw(
            st.sampled_from(
                [png(), png("blue", 300), b"", b"GIF89a not really", b"\x89PNG\r\n\x1a\n truncated", b"x" * 2048]
            )
        )
        name = draw(st.sampled_from(["a.png", "b.jpg", "c.gif", "d.exe", "", "x" * 300, "e.webp"]))
        declared = draw(st.sampled_from(["image/png", "image/jpeg", "application/octet-stream", None]))
        files.append((name, body, declared or ""))
        value = f"@{len(files) - 1}"  # the fake gives the attachment its id when it is sent
    return value


@st.composite
def slash(draw: st.DrawFn, schemas: list[Schema]) -> tuple[Json, list[tuple[str, bytes, str]]]:
    missing = Schema(("nosuch",), ())
    schema = draw(st.sampled_from([*schemas, missing]))
    resolved: Json = {}
    files: list[tuple[str, bytes, str]] = []
    options: list[Json] = []
    for param in schema.params:
        mode = draw(st.sampled_from(["right", "right", "right", "missing", "wrong", "no value", "huge"]))
        if mode == "missing" or (not param.required and mode == "right" and draw(st.booleans())):
            continue
        option: Json = {"name": param.name, "type": param.type}
        if mode == "right":
            option["value"] = draw(option_value(param, resolved, files))
        elif mode == "wrong" and param.type in (3, 4, 5, 10):
            option["value"] = draw(wrong)
        elif mode == "huge" and param.type == 3:
            option["value"] = draw(huge)
        elif mode == "no value" and param.type in (3, 4, 5, 10):
            pass  # an option without its value
        else:
            option["value"] = draw(option_value(param, resolved, files))
        options.append(option)
    if draw(st.integers(0, 5)) == 0:  # an option the command does not have
        options.append({"name": draw(text) or "x", "type": draw(st.sampled_from([3, 4, 5])), "value": draw(wrong)})
    for depth, name in reversed(list(enumerate(schema.path))):
        if depth == 0:
            break
        options = [{"name": name, "type": 1 if depth == len(schema.path) - 1 else 2, "options": options}]
    data: Json = {"name": schema.path[0], "type": 1, "options": options, "resolved": resolved}
    return data, files


@st.composite
def custom_id(draw: st.DrawFn, job_ids: list[str]) -> str:
    job = draw(st.one_of(st.sampled_from(job_ids), st.from_regex(r"[A-Za-z0-9_-]{1,80}", fullmatch=True), text))
    action = draw(st.one_of(st.sampled_from(ACTIONS), st.from_regex(r"[a-z0-9]{1,4}", fullmatch=True)))
    number = draw(st.one_of(st.integers(0, 10**20).map(str), st.just("0" * 18), text))
    return draw(
        st.one_of(
            st.just(f"imp:{action}:{draw(st.integers(0, 9))}:{job}"),
            st.just(f"imp:set:{draw(st.from_regex(r'[a-z0-9_]{1,32}', fullmatch=True))}"),
            st.sampled_from(["imp:set:raw", "imp:set:public", "imp:set:remix", "imp:set:reset", "imp:set:mode:fast",
                             "imp:set:mode:nosuch", "imp:set:stylize:abc", "imp:set:stylize:99999999999"]),
            st.just(f"imp:rv:{draw(st.sampled_from(['ok', 'no']))}:{number}"),
            st.just(f"imp:appeal:{number}"),
            text,
            huge.map(lambda h: h[:200]),
        )
    )  # fmt: skip


@st.composite
def interactions(draw: st.DrawFn, schemas: list[Schema], job_ids: list[str]) -> Drawn:
    dm = draw(st.integers(0, 5)) == 0
    who = draw(st.sampled_from([ALICE, BOB]))
    permissions = draw(st.sampled_from([PERMISSIONS, MANAGER_PERMISSIONS]))
    channel = draw(st.sampled_from([CHANNEL_ID, NSFW_CHANNEL_ID]))
    kind = draw(st.sampled_from(["slash", "slash", "slash", "press", "select", "modal", "modal-open"]))
    files: list[tuple[str, bytes, str]] = []
    if kind == "slash":
        data, files = draw(slash(schemas))
    elif kind in ("press", "select"):
        data = {"custom_id": draw(custom_id(job_ids)), "component_type": 2}
        if kind == "select":
            data["component_type"] = 3
            data["custom_id"] = draw(st.one_of(st.just("imp:set:model"), st.just(data["custom_id"])))
            data["values"] = draw(st.lists(st.one_of(text, st.sampled_from(["v6", "niji6", "tiny-sd15"])), max_size=3))
    else:
        # "modal": a submit for a modal nobody opened; "modal-open": the Remix modal the bot opens for a V1 press.
        fields = draw(st.lists(st.tuples(text, st.one_of(prompt, huge)), max_size=3))
        if kind == "modal-open":
            fields = [("prompt", draw(st.one_of(prompt, huge, st.just(""))))]
        rows = [{"type": 1, "components": [{"type": 4, "custom_id": k, "value": v}]} for k, v in fields]
        data = {"custom_id": draw(st.one_of(text, st.from_regex(r"[0-9a-f]{32}", fullmatch=True))), "components": rows}
    return Drawn(kind, data, who, channel, dm, permissions, files)


def draw_interactions(count: int, schemas: list[Schema], job_ids: list[str]) -> list[Drawn]:
    drawn: list[Drawn] = []

    @settings(
        max_examples=count,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        deadline=None,
    )
    @given(interactions(schemas, job_ids))
    def collect(interaction: Drawn) -> None:
        drawn.append(interaction)

    collect()
    return drawn


def _short(drawn: object) -> str:
    text = repr(drawn)
    return text if len(text) <= 700 else text[:700] + f"… ({len(text)} characters)"


async def _send(fake: FakeDiscord, drawn: Drawn, grid: Json, v1: str) -> InteractionRecord | None:
    if drawn.kind == "slash":
        data = drawn.data
        if drawn.attachments:
            made = [fake.add_attachment(name, body, ctype) for name, body, ctype in drawn.attachments]
            _fill_attachments(data["options"], made)
            data["resolved"]["attachments"] = {a["id"]: a for a in made}
        return await fake.interact(
            2, data, user_id=drawn.user_id, channel_id=drawn.channel_id, dm=drawn.dm, permissions=drawn.permissions
        )
    if drawn.kind in ("press", "select"):
        row = {"type": 1, "components": [{"type": 2, "style": 2, "label": "x", "custom_id": drawn.data["custom_id"]}]}
        if drawn.kind == "select":
            options = [{"label": "x", "value": "x"}]
            row["components"] = [{"type": 3, "custom_id": drawn.data["custom_id"], "options": options}]
        # A message of its own (a settings control edits the message it is on), the control on it.
        message = fake.post(grid["channel_id"], {"content": "x", "components": [row]})
        return await fake.interact(
            3,
            drawn.data,
            user_id=drawn.user_id,
            channel_id=grid["channel_id"],
            dm=False,
            message=message,
            permissions=drawn.permissions,
        )
    if drawn.kind == "modal-open":  # ALICE has Remix on: V1 on her grid opens the modal, then it is submitted
        opened = await fake.press(grid["id"], v1)
        await fake.wait_for(lambda: opened.callback, timeout_s=30)
        assert opened.callback is not None
        if opened.callback["type"] != 9:
            return opened  # refused (a flood limit, say): answered, and nothing to submit
        custom = opened.callback["data"]["custom_id"]
        data = dict(drawn.data, custom_id=custom)
        return await fake.interact(
            5, data, user_id=ALICE, channel_id=opened.channel_id, dm=False, message=fake.messages.get(grid["id"])
        )
    return await fake.interact(
        5, drawn.data, user_id=drawn.user_id, channel_id=drawn.channel_id, dm=drawn.dm, permissions=drawn.permissions
    )


def _fill_attachments(options: list[Json], made: list[Json]) -> None:
    for option in options:
        if "options" in option:
            _fill_attachments(option["options"], made)
        elif isinstance(option.get("value"), str) and option["type"] == 11 and option["value"].startswith("@"):
            option["value"] = made[int(option["value"][1:])]["id"]


async def _quiet(fake: FakeDiscord, seconds: float) -> None:
    """Until the bot has sent nothing to the fake for ``seconds`` (its handlers have finished)."""
    seen, calm = -1, 0.0
    while calm < seconds:
        await asyncio.sleep(0.25)
        calm = calm + 0.25 if len(fake.requests) == seen else 0.0
        seen = len(fake.requests)


async def test_random_interactions_are_answered_or_ignored_never_raised(
    fake: FakeDiscord, start_bot: StartBot, stack: ServiceStack, caplog: pytest.LogCaptureFixture
) -> None:
    bot = await start_bot(moderation=load_policy())
    # A real grid, so that presses and modals can name a real job; Remix on, so that V1 opens a modal.
    grid = await imagine_grid(fake, stack, "a lighthouse")
    job = await shown(fake, stack, grid)
    await stack.service.update_settings(Requester(platform="discord", user_id=ALICE), remix=True)

    v1 = fake.button(grid, "V1")["custom_id"]
    schemas = schemas_of(bot.tree)
    assert {s.path for s in schemas} >= {("imagine",), ("blend",), ("prefer", "option", "set"), ("mod", "ban")}
    payloads = draw_interactions(EXAMPLES, schemas, [job.job_id])
    assert len(payloads) >= min(EXAMPLES, 20)  # hypothesis really drew them

    loop_errors: list[Json] = []
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: loop_errors.append(context))
    sent: list[tuple[Drawn, InteractionRecord | None]] = []
    try:
        with caplog.at_level(logging.WARNING):
            for drawn in payloads:
                sent.append((drawn, await _send(fake, drawn, grid, v1)))
                if drawn.kind == "modal-open":
                    await _quiet(fake, 0.5)  # one Remix at a time: the next V1 opens a modal of its own
            await _quiet(fake, 3.0)
            # Every command the bot has is answered (a slow machine may take a while): waited for, bounded.
            commands = [r for d, r in sent if d.kind == "slash" and d.data["name"] != "nosuch" and r is not None]
            with contextlib.suppress(TimeoutError):
                await fake.wait_for(lambda: all(r.callback is not None for r in commands), 60)
            await _quiet(fake, 1.0)
    finally:
        loop.set_exception_handler(previous)

    raised = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert raised == [], "\n\n".join(
        f"{r.name}: {r.getMessage()}\n  {r.exc_info[1]!r}" if r.exc_info else f"{r.name}: {r.getMessage()}"
        for r in raised[:5]
    )
    assert loop_errors == [], [str(c.get("exception") or c.get("message")) for c in loop_errors[:5]]

    # Answered or ignored: what the bot answered, it answered once; commands it knows with their options were all
    # answered; a press or submit it does not know is ignored (Discord shows "This interaction failed").
    answered = [(d, r) for d, r in sent if r is not None and r.callback is not None]
    known = [(d, r) for d, r in sent if d.kind == "slash" and d.data["name"] != "nosuch"]
    unanswered = [d for d, r in known if r is None or r.callback is None]
    assert unanswered == [], "\n\n".join(_short(d) for d in unanswered[:5])
    assert answered
    print(
        f"\n{len(sent)} interactions: {len(answered)} answered, {len(sent) - len(answered)} ignored; "
        f"kinds {sorted({d.kind for d, _ in sent})}"
    )


async def test_what_the_fuzzer_found_is_answered_in_one_line(
    fake: FakeDiscord, start_bot: StartBot, caplog: pytest.LogCaptureFixture
) -> None:
    """Each finding, once by hand: a command the bot does not have, a required option missing (the signature
    changed), an option of the wrong type, an attachment Discord did not resolve, one its CDN no longer serves; a
    button naming an action that is no button is not ours (ignored, not an error in discord.py's dispatch)."""
    await start_bot()

    async def line(data: Json) -> str:
        record = await fake.interact(2, {"type": 1, "resolved": {}, **data})
        await fake.wait_for(lambda: record.original_id and fake.messages[record.original_id]["content"])
        assert record.original_id is not None
        return str(fake.messages[record.original_id]["content"])

    with caplog.at_level(logging.WARNING):
        assert "not available" in await line({"name": "nosuch", "options": []})
        assert "not available" in await line({"name": "blend", "options": []})
        assert "garbled" in await line({"name": "imagine", "options": [{"name": "prompt", "type": 3, "value": 5}]})
        assert "garbled" in await line({"name": "imagine", "options": [{"name": "prompt", "type": 3}]})
        image = {"name": "image", "type": 11, "value": "123"}
        unresolved = {"name": "imagine", "options": [{"name": "prompt", "type": 3, "value": "a cat"}, image]}
        assert "did not arrive" in await line(unresolved)
        gone = fake.add_attachment("gone.png", png())
        del fake.files[gone["id"]]  # the CDN answers 404: the link expired, or the file was deleted meanwhile
        expired = {
            "name": "imagine",
            "options": [{"name": "prompt", "type": 3, "value": "a cat"}, {**image, "value": gone["id"]}],
            "resolved": {"attachments": {gone["id"]: gone}},
        }
        assert "could not be downloaded" in await line(expired)
        message = fake.post(CHANNEL_ID, {"content": "x"})
        pressed = await fake.interact(3, {"custom_id": "imp:zzzz:1:abc", "component_type": 2}, message=message)
        await _quiet(fake, 1.0)
        assert pressed.callback is None
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info] == []
