"""The vocabulary shared by every front door: who is asking, and which button they pressed.

Platform adapters turn a Discord interaction or a Telegram update into a ``Requester`` and, for buttons, an
``Action``; the job service takes it from there. Button ids (Discord ``custom_id``, Telegram ``callback_data``) carry
``Action.value`` — short on purpose, Telegram allows 64 bytes in all.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

Platform = Literal["discord", "telegram", "console"]


@dataclass(frozen=True)
class Requester:
    """Who asked, and where. Users are per platform: a Discord and a Telegram user are different people."""

    platform: Platform
    user_id: str
    display_name: str = ""
    guild_id: str | None = None  # Discord guild, Telegram group/supergroup chat; None in DMs and the console
    channel_id: str | None = None  # where to answer (channel, chat, forum topic as "chat:topic")
    roles: tuple[str, ...] = ()  # platform role ids, for plan mapping
    nsfw_channel: bool = False


class Action(StrEnum):
    """Every button under a grid or a single image. Values are stable wire ids: never rename one."""

    UPSCALE = "u"  # U1–U4: the chosen image alone, no re-render (free)
    VARIATION = "v"  # V1–V4: img2img from one grid image, a new grid
    REROLL = "r"  # 🔄: the same job, a new seed
    VARY_SUBTLE = "vs"
    VARY_STRONG = "vt"
    VARY_REGION = "vr"
    UPSCALE_SUBTLE = "us"
    UPSCALE_CREATIVE = "uc"
    ZOOM_OUT_2 = "z2"
    ZOOM_OUT_1_5 = "z15"
    ZOOM_CUSTOM = "zc"
    PAN_LEFT = "pl"
    PAN_RIGHT = "pr"
    PAN_UP = "pu"
    PAN_DOWN = "pd"
    MAKE_SQUARE = "sq"
    FAVORITE = "fav"  # ❤️: no render
    DETAILS = "info"  # ✉️ / "details": send seed, job id and parameters privately; no render

    @property
    def renders(self) -> bool:
        return self not in (Action.UPSCALE, Action.FAVORITE, Action.DETAILS)

    @property
    def needs_index(self) -> bool:
        """Grid buttons name one of the four images (1–4); single-image buttons act on the job's one image."""
        return self in (Action.UPSCALE, Action.VARIATION)

    @property
    def remixable(self) -> bool:
        """In Remix mode these ask for an edited prompt first (Midjourney: variations, reroll, pan, zoom)."""
        return self in (
            Action.VARIATION,
            Action.REROLL,
            Action.VARY_SUBTLE,
            Action.VARY_STRONG,
            Action.ZOOM_OUT_2,
            Action.ZOOM_OUT_1_5,
            Action.ZOOM_CUSTOM,
            Action.PAN_LEFT,
            Action.PAN_RIGHT,
            Action.PAN_UP,
            Action.PAN_DOWN,
        )


GRID_ACTIONS: tuple[Action, ...] = (Action.UPSCALE, Action.REROLL, Action.VARIATION)
SINGLE_ACTIONS: tuple[Action, ...] = (
    Action.UPSCALE_SUBTLE,
    Action.UPSCALE_CREATIVE,
    Action.VARY_SUBTLE,
    Action.VARY_STRONG,
    Action.VARY_REGION,
    Action.ZOOM_OUT_2,
    Action.ZOOM_OUT_1_5,
    Action.ZOOM_CUSTOM,
    Action.PAN_LEFT,
    Action.PAN_RIGHT,
    Action.PAN_UP,
    Action.PAN_DOWN,
    Action.MAKE_SQUARE,
    Action.FAVORITE,
    Action.DETAILS,
)
