"""Property-based fuzzing of what Telegram sends: random text, commands, captions, entities, replies and
``callback_data``, pushed through the fake Bot API to the real bot (PTB long-polling, the real job service and
queue). Every update must be answered or ignored; none may raise out of a handler.

Hypothesis draws the updates (``IMPASTO_FUZZ_EXAMPLES``, default 200; set it higher for a longer run). They are
drawn first and then sent in one stream, because one bot stack per example would take minutes; a failure names the
update that raised, so no shrinking is needed to read it.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from telegram import Update
from telegram.ext import ContextTypes, TypeHandler
from tg_stack import telegram_stack

EXAMPLES = int(os.environ.get("IMPASTO_FUZZ_EXAMPLES", "200"))

COMMANDS = ["/imagine", "/blend", "/settings", "/fast", "/relax", "/turbo", "/prefer", "/info", "/history", "/show"]
COMMANDS += ["/start", "/help", "/imagine@impasto_bot", "/nosuch", "/"]
ENTITY_TYPES = ["bot_command", "mention", "hashtag", "url", "bold", "italic", "code", "pre", "text_link", "spoiler"]

# No lone surrogates: Telegram sends valid UTF-8, and JSON cannot carry them.
text = st.text(st.characters(exclude_categories=("Cs",)), max_size=300)
huge = st.text(st.characters(exclude_categories=("Cs",)), min_size=4000, max_size=5000)
flags = st.lists(
    st.sampled_from(["--ar 16:9", "--ar 0:0", "--ar 99999:1", "--v 6", "--niji 6", "--seed -1", "--stylize 1000000",
                     "--chaos 101", "--no", "--repeat 40", "--tile", "--q 0", "--", "—ar 3:2", "::", "{a,b}", "{{{"]),
    max_size=4,
)  # fmt: skip
prompt = st.one_of(text, huge, st.builds(lambda t, f: " ".join([t, *f]), text, flags))
command_text = st.builds(lambda c, p: f"{c} {p}", st.sampled_from(COMMANDS), prompt)


@st.composite
def entities(draw: st.DrawFn, body: str) -> list[dict[str, Any]]:
    size = max(1, len(body.encode("utf-16-le")) // 2)
    found = []
    for _ in range(draw(st.integers(0, 3))):
        offset = draw(st.integers(0, size))
        kind = draw(st.sampled_from(ENTITY_TYPES))
        entity: dict[str, Any] = {"type": kind, "offset": offset, "length": draw(st.integers(0, size - offset + 2))}
        if kind == "text_link":
            entity["url"] = draw(st.sampled_from(["https://example.com", "http://127.0.0.1:6379/", "javascript:x"]))
        found.append(entity)
    return found


@st.composite
def updates(draw: st.DrawFn) -> dict[str, Any]:
    user_id = draw(st.integers(1, 2**40))
    group = draw(st.booleans())
    chat: dict[str, Any] = (
        {"id": -draw(st.integers(1, 2**40)), "type": "supergroup", "title": draw(text) or "g"}
        if group
        else {"id": user_id, "type": "private", "first_name": "F"}
    )
    sender = {"id": user_id, "is_bot": False, "first_name": draw(text) or "F"}
    base: dict[str, Any] = {"message_id": draw(st.integers(1, 2**31 - 1)), "date": 1_700_000_000, "chat": chat}
    kind = draw(st.sampled_from(["text", "command", "caption", "reply", "callback", "callback_inaccessible"]))
    if kind in ("text", "command"):
        body = draw(command_text if kind == "command" else st.one_of(text, huge))
        message = {**base, "from": sender, "text": body or "x", "entities": draw(entities(body or "x"))}
        if kind == "command" and draw(st.booleans()):
            command = body.split(" ", 1)[0]
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        return {"message": message}
    if kind == "caption":
        body = draw(st.one_of(command_text, text))
        return {
            "message": {
                **base,
                "from": sender,
                "caption": body,
                "caption_entities": draw(entities(body)),
                "photo": [{"file_id": draw(text) or "f", "file_unique_id": "u", "width": 9, "height": 9}],
            }
        }
    if kind == "reply":
        original = {**base, "message_id": draw(st.integers(1, 2**31 - 1)), "text": draw(text) or "x"}
        original["from"] = {"id": draw(st.integers(1, 2**40)), "is_bot": True, "first_name": "impasto"}
        return {"message": {**base, "from": sender, "text": draw(prompt) or "x", "reply_to_message": original}}
    data = draw(st.one_of(text.map(lambda t: t[:64]), st.sampled_from(["", "u:1", "x" * 64, "v:zzz:9", "::::"])))
    query: dict[str, Any] = {"id": str(draw(st.integers(1, 2**40))), "chat_instance": "ci", "from": sender}
    if data or draw(st.booleans()):
        query["data"] = data
    if kind == "callback":
        query["message"] = {**base, "from": {"id": 1, "is_bot": True, "first_name": "impasto"}, "text": "x"}
    else:  # a message too old for the bot to see: Telegram sends its date as 0
        query["message"] = {"message_id": base["message_id"], "chat": chat, "date": 0}
    return {"callback_query": query}


def _short(update: object) -> str:
    text = repr(update)
    return text if len(text) <= 600 else text[:600] + f"… ({len(text)} characters)"


def draw_updates(count: int) -> list[dict[str, Any]]:
    drawn: list[dict[str, Any]] = []

    @settings(
        max_examples=count,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        deadline=None,
    )
    @given(updates())
    def collect(update: dict[str, Any]) -> None:
        drawn.append(update)

    collect()
    return drawn


async def test_random_updates_are_answered_or_ignored_never_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    payloads = draw_updates(EXAMPLES)
    assert len(payloads) >= min(EXAMPLES, 20)  # hypothesis really drew them
    raised: list[tuple[object, BaseException]] = []
    finished = 0
    all_done = asyncio.Event()

    async def record_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert context.error is not None
        raised.append((update, context.error))

    async def count_finished(_update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        nonlocal finished
        finished += 1
        if finished >= len(payloads):
            all_done.set()

    async with telegram_stack(tmp_path) as stack:
        assert stack.application is not None
        stack.application.add_error_handler(record_error)
        # Group 99 runs after the bot's own handlers (group 0) have finished with the update, raised or not.
        stack.application.add_handler(TypeHandler(Update, count_finished), group=99)
        with caplog.at_level(logging.ERROR):
            for payload in payloads:
                await stack.api.push(payload)
            async with asyncio.timeout(300):
                await all_done.wait()
        # The bot really read them and replied. A handler may send its reply from a task of its own after it has
        # returned (group 99 has counted it by then), so wait for the replies rather than read the calls at once.
        for method in ("sendMessage", "answerCallbackQuery"):
            await stack.api.wait_for(lambda call, method=method: call.method == method, timeout_s=60)

    assert raised == [], "\n\n".join(f"{_short(update)}\n  raised {error!r}" for update, error in raised[:5])
    unhandled = [r for r in caplog.records if r.name.startswith("impasto") and r.levelno >= logging.ERROR]
    assert unhandled == [], [r.getMessage() for r in unhandled[:5]]
