"""The galleries, as the web front door reads them: pages of ``JobView``s and a job's lineage.

A new concept module beside ``reading.py`` (built on the same session factory); the SQL is in
``impasto.storage.gallery``. Who may see what is decided by the caller from a signed link: a user's own page shows
their stealth jobs; a server's page only public ones.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from impasto.bots.service.reading import view_of
from impasto.bots.service.views import JobView
from impasto.storage import gallery, history
from impasto.storage.gallery import PUBLIC

PAGE_SIZE = 24


@dataclass(frozen=True)
class Page:
    jobs: tuple[JobView, ...]
    page: int  # 1-based
    has_next: bool


@dataclass(frozen=True)
class Lineage:
    parent: JobView | None
    children: tuple[JobView, ...]


class Gallery:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], page_size: int = PAGE_SIZE) -> None:
        self.sessions = sessions
        self.page_size = page_size

    async def mine(
        self, platform: str, user_id: str, *, page: int = 1, search: str | None = None, favorites_only: bool = False
    ) -> Page:
        page = max(1, page)
        async with self.sessions() as session:
            found = await gallery.user_jobs(
                session,
                platform,
                user_id,
                search=search or None,
                favorites_only=favorites_only,
                limit=self.page_size + 1,
                offset=(page - 1) * self.page_size,
            )
        return self._page(found, page)

    async def public(self, platform: str, guild_id: str, *, page: int = 1) -> Page:
        page = max(1, page)
        async with self.sessions() as session:
            found = await gallery.public_jobs(
                session, platform, guild_id, limit=self.page_size + 1, offset=(page - 1) * self.page_size
            )
        return self._page(found, page)

    async def lineage(self, job: JobView, *, viewer: tuple[str, str] | None) -> Lineage:
        """``job``'s parent and children that ``viewer`` (platform, user id) may see: their own, or public ones."""
        async with self.sessions() as session:
            parent = await history.job_record(session, job.parent_id) if job.parent_id else None
            kids = await gallery.children(session, job.job_id)
        views = [view_of(r) for r in ([parent] if parent else []) + kids]
        seen = {v.job_id for v in views if visible_to(v, viewer)}
        parent_view = views[0] if parent and views[0].job_id in seen else None
        return Lineage(parent_view, tuple(v for v in views[1 if parent else 0 :] if v.job_id in seen))

    def _page(self, found: list[history.JobRecord], page: int) -> Page:
        return Page(tuple(view_of(r) for r in found[: self.page_size]), page, len(found) > self.page_size)


def visible_to(job: JobView, viewer: tuple[str, str] | None) -> bool:
    """Stealth jobs to their owner only; public ones to anyone holding a link that reached them."""
    return job.visibility == PUBLIC or (viewer is not None and (job.platform, job.user_id) == viewer)
