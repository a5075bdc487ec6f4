"""What the job service hands back to the bots: plain frozen dataclasses, no SQL objects, no platform types."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

Lane = Literal["turbo", "fast", "relax"]


@dataclass(frozen=True)
class QueuedRender:
    """What the service asks the queue to run: the same fields as ``impasto.queue.contract.RenderRequest``."""

    job_id: str
    lane: Lane
    user_key: str  # "platform:user id"
    guild_key: str | None  # "platform:guild id"; None in DMs and the console
    enqueued_at: float  # unix seconds


#: The queue seam: ``lambda r: impasto.queue.client.enqueue(pool, RenderRequest(**dataclasses.asdict(r)))`` in
#: production (see ``arq_enqueue``), a recording function in tests.
Enqueue = Callable[[QueuedRender], Awaitable[object]]


@dataclass(frozen=True)
class ImageView:
    index: int  # 0 = grid, 1–4 singles (1 for a single result)
    key: str  # ImageStore key
    width_px: int
    height_px: int
    nsfw_score: float | None = None  # the worker's image classifier; None when none ran
    flagged: bool = False  # the classifier flagged it: delivery applies the server's choice (outputs.py)


@dataclass(frozen=True)
class JobView:
    job_id: str
    platform: str  # the owner's platform
    user_id: str  # the owner's platform user id
    user_name: str
    guild_id: str | None  # the platform guild/group id the job was made in; None in DMs and the console
    channel_id: str | None  # where it was asked (Requester.channel_id): where its result goes
    parent_id: str | None
    action: str  # "imagine", "blend", or an Action value
    image_index: int | None
    prompt: str  # as typed
    display: str  # as read back, with parameters
    params: Mapping[str, Any]  # Job.to_json()
    seed: int
    model: str
    mode: str
    visibility: str
    status: str  # queued | running | done | failed | cancelled
    queued_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    gpu_seconds: float
    charged_gpu_seconds: float
    error: str | None
    attempts: int
    favorite: bool
    cancel_requested: bool
    images: tuple[ImageView, ...] = ()
    read_as: str | None = None  # the English the model read, when the worker translated the prompt
    nsfw_channel: bool = False  # the place it was asked allowed NSFW (Discord's channel flag) at asking time
    described: tuple[str, ...] = ()  # a /describe job's four prompts, once done (best first)
    locale: str = "en"  # the requester's reply language at asking time: delivery writes in it

    @property
    def flagged(self) -> bool:
        """The worker's classifier flagged one of its pictures."""
        return any(image.flagged for image in self.images)

    def image(self, index: int) -> ImageView | None:
        return next((image for image in self.images if image.index == index), None)

    @property
    def is_grid(self) -> bool:
        """A 2×2 result (U1–U4 / V1–V4 buttons) rather than a single image."""
        return any(image.index == 0 for image in self.images) or len(self.images) > 1


@dataclass(frozen=True)
class MessageView:
    """A platform message that shows a job (recorded with ``record_message``)."""

    platform: str
    chat_id: str
    message_id: str
    kind: str
    created_at: datetime
    # The message this job answers (the command, or the message whose button was pressed), from the job's
    # ``reply_to`` row in the same chat; filled in by the delivery core for a platform that posts new messages
    # under it (Telegram's result photo replies to the command). None: not recorded.
    reply_to: str | None = None


@dataclass(frozen=True)
class JobTicket:
    """A job the service accepted (or had already accepted for this idempotency key)."""

    job_id: str
    status: str  # "queued" for a render; "done" for a free pick (U1–U4)
    mode: str
    display: str
    seed: int
    reserved_gpu_seconds: float
    duplicate: bool = False  # the idempotency key was seen before: nothing new was queued or charged
    # Over the plan's concurrency: the job waits until one of the user's others finishes (Midjourney's "Job queued").
    waiting: bool = False
    notice: str | None = None  # a line to show the user with the ticket ("Job queued: …"), if any


@dataclass(frozen=True)
class Reshown:
    """``/show``, ✉️: the job to post again, and whether its picture goes behind a spoiler where it is asked.
    ``withheld``: ✉️ only — the pictures are left out (the details are still sent), and this one line says why."""

    view: JobView
    spoiler: bool = False
    withheld: str | None = None


PressKind = Literal["job", "image", "remix", "favorite", "details"]


@dataclass(frozen=True)
class PressResult:
    """What a button press did.

    ``job``: a render was queued (``ticket``; ``view`` is the new child job).
    ``image``: U1–U4 — ``view`` is a finished single-image job holding the chosen image; nothing rendered, free.
    ``remix``: Remix mode is on (or Custom Zoom was pressed): show a modal pre-filled with ``view.display`` (the
    pressed job) and call ``press`` again with ``remix_text``.
    ``favorite``: ❤️ toggled; ``view.favorite`` is the new state. ``details``: ``view`` is the pressed job.
    """

    kind: PressKind
    view: JobView
    ticket: JobTicket | None = None
    # Imagine all under /describe makes four jobs: all of them (``ticket`` is the first).
    tickets: tuple[JobTicket, ...] = ()
    # ``image``: the pick goes behind a spoiler where it is posted (a flagged grid picture; ``repost_action``).
    spoiler: bool = False


@dataclass(frozen=True)
class InfoView:
    """The /info panel."""

    platform: str
    user_id: str
    plan: str
    mode: str
    visibility: str
    remix: bool
    fast_gpu_seconds_limit: float
    fast_gpu_seconds_used: float
    fast_gpu_seconds_reserved: float
    renews_on: date  # the first day of the next period (UTC)
    lifetime_images: int
    lifetime_gpu_seconds: float
    relaxed_images: int
    relaxed_gpu_seconds: float
    queued_jobs: Mapping[str, int] = field(default_factory=dict)  # lane -> queued count
    running_jobs: tuple[str, ...] = ()  # job ids

    @property
    def fast_remaining_hours(self) -> float:
        left = self.fast_gpu_seconds_limit - self.fast_gpu_seconds_used - self.fast_gpu_seconds_reserved
        return max(0.0, left) / 3600

    @property
    def fast_limit_hours(self) -> float:
        return self.fast_gpu_seconds_limit / 3600

    @property
    def fast_remaining_percent(self) -> float:
        if self.fast_gpu_seconds_limit <= 0:
            return 0.0
        return 100.0 * self.fast_remaining_hours * 3600 / self.fast_gpu_seconds_limit

    @property
    def lifetime_hours(self) -> float:
        return self.lifetime_gpu_seconds / 3600

    @property
    def relaxed_hours(self) -> float:
        return self.relaxed_gpu_seconds / 3600


Variation = Literal["high", "low"]


@dataclass(frozen=True)
class SettingsView:
    """The /settings panel's state, and the parameter text it stands for."""

    mode: str  # fast | relax | turbo
    visibility: str  # public | stealth
    remix: bool
    raw: bool
    stylize: int | None  # None = the model default (100)
    model: str | None  # a registry name ("v6", "niji6"); None = the operator's default
    variation: Variation
    suffix: str
    settings_text: str  # what the panel adds to every prompt, e.g. "--style raw --s 250 --relax"
    language: str | None = None  # the reply language the user chose (a catalog name); None: automatic
    locale: str = "en"  # the language replies come in now (the choice, else the client's, else the server's)


@dataclass(frozen=True)
class GuildView:
    platform: str
    guild_id: str
    allowed_channels: tuple[str, ...]
    role_plans: Mapping[str, str]
    daily_cap_gpu_seconds: float | None
    locale: str | None = None  # the server's default reply language; None: each member's client decides
