"""The message index: which platform message shows which job, so any bot process can serve its buttons."""

from __future__ import annotations

from impasto.bots.service.errors import JobNotFound
from impasto.bots.service.reading import Reading
from impasto.bots.service.views import JobView, MessageView
from impasto.storage import messages


class MessageIndex(Reading):
    async def record_message(self, job_id: str, platform: str, chat_id: str, message_id: str, kind: str) -> None:
        """Remember that a platform message shows ``job_id``; recording the same message again moves it."""
        async with self.sessions() as session, session.begin():
            if not await messages.record_message(session, job_id, platform, chat_id, message_id, kind):
                raise JobNotFound(f"no job {job_id!r}")

    async def record_messages(self, job_id: str, platform: str, rows: list[tuple[str, str, str]]) -> None:
        """Record several ``(chat_id, message_id, kind)`` rows for a job in one transaction. The delivery core reads
        a job with only a reply-to row as born off the chat and opens a message for it: a chat message and its
        reply-to row must therefore appear together, never the reply-to row alone."""
        async with self.sessions() as session, session.begin():
            for chat_id, message_id, kind in rows:
                if not await messages.record_message(session, job_id, platform, chat_id, message_id, kind):
                    raise JobNotFound(f"no job {job_id!r}")

    async def find_job_by_message(self, platform: str, chat_id: str, message_id: str) -> JobView | None:
        """The job a platform message shows, or None."""
        async with self.sessions() as session:
            job_id = await messages.job_for_message(session, platform, chat_id, message_id)
        if job_id is None:
            return None
        try:
            return await self.job(job_id)
        except JobNotFound:
            return None

    async def messages(self, job_id: str) -> list[MessageView]:
        """Every platform message recorded for a job, oldest first (e.g. the progress message to edit)."""
        async with self.sessions() as session:
            rows = await messages.messages_of(session, job_id)
            return [MessageView(m.platform, m.chat_id, m.message_id, m.kind, m.created_at) for m in rows]
