"""One progress message, edited in place, no more often than ``min_interval_s``.

discord.py already waits out 429s; spacing the edits ourselves keeps a busy bot from hitting them in the first place
(Discord allows about five edits per five seconds per channel). A skipped update is not lost: the next one carries
the newest state, and ``finish`` always goes out.
"""

from __future__ import annotations

import time

import discord

from impasto.bots.discord.delivery import Target


class ProgressEditor:
    def __init__(self, target: Target, *, min_interval_s: float = 2.0) -> None:
        self.target = target
        self.min_interval_s = min_interval_s
        self._last_edit = float("-inf")
        self._last_content: str | None = None
        self.edits = 0
        self.skipped = 0

    async def update(self, content: str, preview: discord.File | None = None) -> bool:
        """Edit unless the last edit was too recent or said the same; True if an edit went out."""
        now = time.monotonic()
        if content == self._last_content or now - self._last_edit < self.min_interval_s:
            self.skipped += 1
            return False
        await self._edit(content, preview, None)
        return True

    async def finish(self, content: str, file: discord.File | None = None, view: discord.ui.View | None = None) -> None:
        await self._edit(content, file, view)

    async def _edit(self, content: str, file: discord.File | None, view: discord.ui.View | None) -> None:
        self._last_edit = time.monotonic()
        self._last_content = content
        self.edits += 1
        await self.target.edit(content, file=file, view=view)
