"""What the worker records about how the model read a job's prompt (engine/translate.py): ``jobs.read_as``.

Called by the worker in the transaction that completes the job, only when ``complete_job`` succeeded, so a
duplicate delivery records nothing twice. The bots read ``Job.read_as`` for the "read as: …" caption line and /show.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from impasto.storage.models import Job


async def record_reading(session: AsyncSession, job_id: str, *, read_as: str | None, translate_seconds: float) -> None:
    """Store the translation of a job's prompt; nothing to do (no query) when nothing was translated."""
    if read_as is None and not translate_seconds:
        return
    if translate_seconds < 0:
        raise ValueError(f"translate_seconds must be >= 0, got {translate_seconds}")
    await session.execute(
        update(Job).where(Job.id == job_id).values(read_as=read_as, translate_seconds=translate_seconds)
    )


async def record_described(session: AsyncSession, job_id: str, prompts: list[str]) -> None:
    """Store a /describe job's four prompts (in the transaction that completes it): its buttons read them back."""
    await session.execute(update(Job).where(Job.id == job_id).values(described=list(prompts)))
