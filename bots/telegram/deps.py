"""What the handlers share: the job service, the image store, Redis routes and a few limits. Built in ``main()``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from impasto.bots.service.jobs import JobService
from impasto.bots.telegram.routes import Routes
from impasto.bots.web.links import WebLinkSettings
from impasto.queue.moderation.policy import Policy
from impasto.storage.images import ImageStore


@dataclass(frozen=True)
class Deps:
    service: JobService
    images: ImageStore
    routes: Routes
    models: Sequence[str] = ()  # registry names offered on the /settings panel
    max_upload_bytes: int = 10 * 1024 * 1024
    # The web front door's link settings when configured: Vary (Region) is offered and opens the region editor.
    web: WebLinkSettings | None = None
    # The prompt policy (``IMPASTO_MODERATION``): /mod for group administrators. None: no /mod.
    moderation: Policy | None = None
    album_wait_s: float = 1.5  # how long to wait for the rest of an album after its last part arrived
