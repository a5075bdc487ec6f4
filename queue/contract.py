"""The job on the wire: what the job service puts on the arq queue and what a worker accepts.

It carries identities, not parameters. The SQL job row is the real state (status, prompt, parameters, input images,
cancel flag); the worker reads it with ``storage.lifecycle.claim_job``. So a retried or re-delivered job always acts on
the current row (a job cancelled while queued is not painted), a prompt never sits twice in two stores that could
disagree, and the message stays a few hundred bytes however large the prompt or its image prompts are.

JSON, never pickle (arq's default): a worker must not execute what it deserialises. ``version`` is checked first so
that a worker from another release fails the job with a message saying so instead of misreading it.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

CONTRACT_VERSION = 1

Lane = Literal["turbo", "fast", "relax"]
LANES: tuple[Lane, ...] = ("turbo", "fast", "relax")  # in priority order: relax waits behind fast


class ContractError(Exception):
    """A queued message this worker cannot accept; the text names what was wrong."""


class RenderRequest(BaseModel):
    """One render job on the wire (contract version 1)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int = CONTRACT_VERSION
    job_id: str = Field(min_length=1, max_length=64)
    lane: Lane
    user_key: str = Field(min_length=1, max_length=160)  # "platform:user id", the unit of fairness
    guild_key: str | None = Field(default=None, max_length=160)  # "platform:guild id"; None in DMs / the console
    enqueued_at: float  # unix seconds when the job service queued it: the "waiting too long" clock

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def from_wire(cls, payload: object) -> RenderRequest:
        if not isinstance(payload, dict):
            raise ContractError(f"queued job is a {type(payload).__name__}, expected a JSON object")
        version = payload.get("version")
        if version != CONTRACT_VERSION:
            raise ContractError(
                f"queued job speaks contract version {version!r}, this worker speaks {CONTRACT_VERSION}; "
                "run workers and bots from the same impasto release"
            )
        try:
            return cls.model_validate(payload)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "job"
            raise ContractError(f"queued job field {where!r} is invalid: {first['msg']}") from exc


def serialize(obj: Any) -> bytes:
    """arq's ``job_serializer``: JSON. Exceptions in failed results become their text (arq stores them there)."""
    return json.dumps(obj, default=str, separators=(",", ":")).encode()


def deserialize(data: bytes) -> Any:
    """arq's ``job_deserializer``."""
    return json.loads(data)
