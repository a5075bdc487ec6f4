"""What every part of the job service shares: the session factory, the image store, the registry and the plans."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from impasto.bots.service.context import Context, load_context
from impasto.bots.service.requester import Requester
from impasto.engine.registry import Registry
from impasto.storage.images import ImageStore
from impasto.storage.plans import Plans


class ServiceBase:
    sessions: async_sessionmaker[AsyncSession]
    images: ImageStore
    registry: Registry
    plans: Plans

    async def _context(self, who: Requester) -> Context:
        async with self.sessions() as session, session.begin():
            return await load_context(session, who, self.plans)
