"""What the Discord adapter needs from the rest of impasto, in the adapter's own terms.

The cogs and views talk only to ``Backend``; ``service_backend.py`` implements it over the job service and the
queue's events. Keeping the seam here lets the adapter be tested against the real discord.py client and the fake
Discord with any implementation, and keeps discord.py out of the job service (it imports neither library).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from impasto.bots.service.requester import Requester
from impasto.queue.actions import Action


class UserFacingError(Exception):
    """A refusal to show the user as one line (bad prompt, quota, not your job…)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class JobCard:
    """A job as a message shows it."""

    id: str
    prompt: str  # the prompt as the user should see it (suffix and options expanded)
    owner_id: str  # platform user id of who is charged
    mode: str = "fast"  # fast | relax | turbo
    kind: str = "grid"  # grid (4 images) | single (one image)
    what: str = ""  # "Variations (Strong)", "Zoom Out", "Upscaled (Subtle)"…; empty for /imagine
    index: int = 0  # the image of the parent this derives from (U#, V#), 0 if none
    notice: str = ""  # a line for the requester alone, e.g. "Job queued: …" when over their concurrency limit


@dataclass(frozen=True)
class Attached:
    """An image a user attached, already checked (``intake``): its Discord CDN link and its bytes."""

    url: str
    data: bytes


@dataclass(frozen=True)
class Progress:
    percent: int
    preview_png: bytes | None = None


@dataclass(frozen=True)
class Finished:
    grid_png: bytes | None  # a grid job's 2×2 image; None for a single-image job
    images_png: tuple[bytes, ...] = ()
    flagged: bool = False  # moderation flagged it: shown as a spoiler outside NSFW channels
    note: str = ""  # a line under the caption ("the built-in tiny model paints noise")


@dataclass(frozen=True)
class Failed:
    reason: str
    cancelled: bool = False


Event = Progress | Finished | Failed


@dataclass(frozen=True)
class PressResult:
    """What a button press produced: new jobs to follow, or an image/notice at once (U#, ❤️)."""

    jobs: Sequence[JobCard] = ()
    single: JobCard | None = None  # U#: the chosen image as its own message, no render
    single_png: bytes | None = None
    notice: str = ""  # ❤️ and friends: one line for the presser only
    modal_prompt: str | None = None  # Remix mode / Custom Zoom: ask for the prompt first, then press again


@dataclass(frozen=True)
class Details:
    text: str
    images_png: Sequence[bytes] = field(default_factory=tuple)


@dataclass(frozen=True)
class SettingsPanel:
    """The /settings panel's state: which toggles are on and which model is chosen."""

    model: str
    models: Sequence[str]
    mode: str
    public: bool
    remix: bool
    raw: bool
    stylize: int | None
    suffix: str


@dataclass(frozen=True)
class Orphan:
    """A job that ended while no process was following its message (the bot restarted meanwhile)."""

    card: JobCard
    channel_id: str
    message_id: str
    event: Finished | Failed


class CatchUp(Protocol):
    def orphans(self, *, consumer: str, is_followed: Callable[[str], bool]) -> AsyncIterator[Orphan]: ...


class Backend(Protocol):
    async def imagine(
        self, who: Requester, text: str, *, images: Sequence[Attached], idempotency_key: str
    ) -> Sequence[JobCard]: ...

    async def blend(
        self, who: Requester, images: Sequence[Attached], *, dimensions: str, idempotency_key: str
    ) -> Sequence[JobCard]: ...

    async def press(
        self,
        who: Requester,
        job_id: str,
        action: Action,
        index: int,
        *,
        idempotency_key: str,
        remix_text: str | None = None,
    ) -> PressResult: ...

    def follow(self, job_id: str) -> AsyncIterator[Event]: ...

    async def record_message(self, job_id: str, channel_id: str, message_id: str) -> None: ...

    async def job_for_message(self, channel_id: str, message_id: str) -> str | None: ...

    async def details(self, who: Requester, job_id: str) -> Details: ...

    async def cancel_or_delete(self, who: Requester, job_id: str) -> Literal["cancelled", "deleted"]: ...

    async def show(self, who: Requester, job_id: str) -> tuple[JobCard, Finished]: ...

    async def command(self, who: Requester, name: str, argument: str = "") -> str:
        """Text commands: info, history, fast, relax, turbo, public, stealth, prefer_suffix, prefer_option_set,
        prefer_option_list, prefer_remix. Returns the reply text (already user-facing, not yet escaped)."""
        ...

    async def settings(self, who: Requester) -> SettingsPanel: ...

    async def update_setting(self, who: Requester, key: str, value: str | None) -> SettingsPanel: ...
