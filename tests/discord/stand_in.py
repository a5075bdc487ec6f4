"""A ``Backend`` for adapter tests: it records what the adapter asked and lets the test play the worker's events.

It stands in for the job service at the adapter's own seam (``impasto.bots.discord.backend.Backend``), so these tests
pin down what the Discord side does with each answer; the service-backed flows are tested where the service is real.
"""

from __future__ import annotations

import asyncio
import io
import itertools
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from PIL import Image

from impasto.bots.discord.backend import (
    Attached,
    Details,
    Event,
    Failed,
    Finished,
    JobCard,
    PressResult,
    Progress,
    SettingsPanel,
    UserFacingError,
)
from impasto.bots.service.requester import Requester
from impasto.queue.actions import Action


def png(color: str = "red", size: int = 8) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), color).save(buffer, "PNG")
    return buffer.getvalue()


@dataclass
class Call:
    name: str
    who: Requester | None
    args: dict[str, Any] = field(default_factory=dict)


class StandInBackend:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.cards: dict[str, JobCard] = {}
        self.events: dict[str, asyncio.Queue[Event]] = {}
        self.messages: dict[str, str] = {}  # message id -> job id
        self.remix = False
        self.panel = SettingsPanel("v6", ("v6", "v5", "niji6"), "fast", True, False, False, None, "")
        self._ids = itertools.count(1)
        self.by_key: dict[str, PressResult] = {}

    def new_card(self, prompt: str, owner: str, **kw: Any) -> JobCard:
        card = JobCard(id=f"job{next(self._ids)}", prompt=prompt, owner_id=owner, **kw)
        self.cards[card.id] = card
        self.events[card.id] = asyncio.Queue()
        return card

    def emit(self, job_id: str, event: Event) -> None:
        self.events[job_id].put_nowait(event)

    def finish(self, job_id: str, *, flagged: bool = False) -> None:
        self.emit(
            job_id,
            Finished(
                grid_png=png("blue", 16),
                images_png=tuple(png(c) for c in ("red", "green", "blue", "white")),
                flagged=flagged,
            ),
        )

    def called(self, name: str) -> list[Call]:
        return [c for c in self.calls if c.name == name]

    # -- Backend -------------------------------------------------------------------------------------------------

    async def imagine(
        self, who: Requester, text: str, *, images: Sequence[Attached], idempotency_key: str
    ) -> Sequence[JobCard]:
        self.calls.append(
            Call("imagine", who, {"text": text, "images": [i.data for i in images], "key": idempotency_key})
        )
        if "--ar 0:1" in text:
            raise UserFacingError("--ar 0:1: both sides must be positive whole numbers, e.g. --ar 16:9")
        prompts = [text.replace("{a, b}", "a"), text.replace("{a, b}", "b")] if "{a, b}" in text else [text]
        return [self.new_card(p, who.user_id) for p in prompts]

    async def blend(
        self, who: Requester, images: Sequence[Attached], *, dimensions: str, idempotency_key: str
    ) -> Sequence[JobCard]:
        self.calls.append(Call("blend", who, {"images": [i.data for i in images], "dimensions": dimensions}))
        if len(images) < 2:
            raise UserFacingError("/blend needs 2–5 images")
        return [self.new_card("blend", who.user_id)]

    async def press(
        self,
        who: Requester,
        job_id: str,
        action: Action,
        index: int,
        *,
        idempotency_key: str,
        remix_text: str | None = None,
    ) -> PressResult:
        self.calls.append(
            Call(
                "press",
                who,
                {"job": job_id, "action": action, "index": index, "key": idempotency_key, "remix_text": remix_text},
            )
        )
        if job_id not in self.cards:
            raise UserFacingError(f"job {job_id} not found")
        if idempotency_key in self.by_key:
            return self.by_key[idempotency_key]
        parent = self.cards[job_id]
        if ((action.remixable and self.remix) or action is Action.ZOOM_CUSTOM) and remix_text is None:
            return PressResult(modal_prompt=parent.prompt)
        prompt = remix_text or parent.prompt
        result: PressResult
        if action is Action.UPSCALE:
            card = self.new_card(parent.prompt, who.user_id, kind="single", index=index)
            result = PressResult(single=card, single_png=png("green"))
        elif action is Action.FAVORITE:
            result = PressResult(notice="❤️ Saved to your favorites")
        elif action is Action.VARY_REGION:
            raise UserFacingError("Vary (Region) needs a mask editor, which Discord does not offer; use Vary (Subtle)")
        elif action in (Action.UPSCALE_SUBTLE, Action.UPSCALE_CREATIVE):
            result = PressResult(jobs=[self.new_card(prompt, who.user_id, kind="single", what="Upscaled")])
        else:
            result = PressResult(jobs=[self.new_card(prompt, who.user_id, what=action.name.title())])
        self.by_key[idempotency_key] = result
        return result

    async def follow(self, job_id: str) -> AsyncIterator[Event]:
        queue = self.events[job_id]
        while True:
            event = await queue.get()
            yield event
            if isinstance(event, Finished | Failed):
                return

    async def record_message(self, job_id: str, channel_id: str, message_id: str) -> None:
        self.calls.append(Call("record_message", None, {"job": job_id, "channel": channel_id, "message": message_id}))
        self.messages[message_id] = job_id

    async def job_for_message(self, channel_id: str, message_id: str) -> str | None:
        return self.messages.get(message_id)

    async def details(self, who: Requester, job_id: str) -> Details:
        self.calls.append(Call("details", who, {"job": job_id}))
        return Details(f"Job ID: {job_id}\nseed 1234", (png("red"), png("green")))

    async def cancel_or_delete(self, who: Requester, job_id: str) -> Literal["cancelled", "deleted"]:
        self.calls.append(Call("cancel_or_delete", who, {"job": job_id}))
        card = self.cards[job_id]
        if card.owner_id != who.user_id:
            raise UserFacingError("only the job's owner can cancel or delete it")
        if self.events[job_id].empty() and job_id.endswith("running"):
            return "cancelled"
        return "deleted"

    async def show(self, who: Requester, job_id: str) -> tuple[JobCard, Finished]:
        if job_id not in self.cards:
            raise UserFacingError(f"no job {job_id}")
        return self.cards[job_id], Finished(grid_png=png("blue", 16))

    async def command(self, who: Requester, name: str, argument: str = "") -> str:
        self.calls.append(Call("command", who, {"name": name, "argument": argument}))
        return f"**{name}** done {argument}".strip()

    async def settings(self, who: Requester) -> SettingsPanel:
        return self.panel

    async def update_setting(self, who: Requester, key: str, value: str | None) -> SettingsPanel:
        self.calls.append(Call("update_setting", who, {"key": key, "value": value}))
        if key == "remix":
            self.panel = replace(self.panel, remix=not self.panel.remix)
        elif key == "model" and value:
            self.panel = replace(self.panel, model=value)
        elif key == "mode" and value:
            self.panel = replace(self.panel, mode=value)
        return self.panel


__all__ = ["Progress", "StandInBackend", "png"]
