"""The message index: which platform message shows which job (buttons resolve through it; delivery edits it)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from impasto.storage.models import Job, Message
from impasto.storage.upsert import insert_or_update


async def record_message(
    session: AsyncSession, job_id: str, platform: str, chat_id: str, message_id: str, kind: str
) -> bool:
    """Remember that a message shows ``job_id``; recording the same message again moves it. False: no such job."""
    if await session.get(Job, job_id) is None:
        return False
    values: dict[str, Any] = {
        "job_id": job_id,
        "platform": platform,
        "chat_id": chat_id,
        "message_id": message_id,
        "kind": kind,
    }
    await insert_or_update(
        session,
        Message,
        values,
        columns=["platform", "chat_id", "message_id"],
        update={"job_id": job_id, "kind": kind},
    )
    return True


async def job_for_message(session: AsyncSession, platform: str, chat_id: str, message_id: str) -> str | None:
    return await session.scalar(
        select(Message.job_id).where(
            Message.platform == platform, Message.chat_id == chat_id, Message.message_id == message_id
        )
    )


async def messages_of(session: AsyncSession, job_id: str) -> list[Message]:
    """Every message recorded for a job, oldest first."""
    return list(await session.scalars(select(Message).where(Message.job_id == job_id).order_by(Message.id)))
