"""What the handlers share: the job service, the image store, the delivery core, Redis and a few limits. Built in
``main()``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from redis.asyncio import Redis

from impasto.bots.service.delivery.core import Delivery
from impasto.bots.service.jobs import JobService
from impasto.bots.web.links import WebLinkSettings
from impasto.queue.keys import Namespace
from impasto.queue.moderation.policy import Policy
from impasto.storage.images import ImageStore


@dataclass(frozen=True)
class Deps:
    service: JobService
    images: ImageStore
    delivery: Delivery  # edits each job's message and posts its end; ``shown`` once a progress message is indexed
    redis: Redis  # albums being collected, remix prompts asked, double-click gates (never delivery state)
    ns: Namespace
    models: Sequence[str] = ()  # registry names offered on the /settings panel
    max_upload_bytes: int = 10 * 1024 * 1024
    # The web front door's link settings when configured: Vary (Region) is offered and opens the region editor.
    web: WebLinkSettings | None = None
    # The prompt policy (``IMPASTO_MODERATION``): /mod for group administrators. None: no /mod.
    moderation: Policy | None = None
    album_wait_s: float = 1.5  # how long to wait for the rest of an album after its last part arrived

    def key(self, *parts: object) -> str:
        """A Redis key of the Telegram handlers, under the deployment's namespace."""
        return self.ns.prefix + "telegram:" + ":".join(str(p) for p in parts)
