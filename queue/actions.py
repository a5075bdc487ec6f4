"""Every way a job is born, and every button under a result: one table read by the queue, the job service and both
chat adapters.

A row says what the action *is* (its wire id, its one English label, the icon a button shows) and what it *does*
(whether it names one of four images, whether Remix asks for a new prompt, whether it draws a new seed, what the
engine paints: strength, zoom, pan, upscale). Adapters lay buttons out from the rows; the job service prices and
admits from them; ``queue/specs.py`` turns a stored job into the engine call by reading the row of its action, never
by comparing strings. Adding an action is one row here, one branch in ``specs.build_work`` (the engine call) and one
test (README, "Adding a button action").

Wire ids (``Action`` values) are stored in SQL (``jobs.action``) and carried by button ids (Discord ``custom_id``,
Telegram ``callback_data``, 64 bytes in all): short on purpose, and never renamed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from impasto.engine.spec import PanDirection, Strength


class Action(StrEnum):
    """Wire ids. ``IMAGINE`` and ``BLEND`` are commands (how a job is born without a parent); the rest are buttons."""

    IMAGINE = "imagine"
    BLEND = "blend"
    UPSCALE = "u"  # U1–U4: the chosen image alone, no re-render (free)
    VARIATION = "v"  # V1–V4: img2img from one grid image, a new grid
    REROLL = "r"  # 🔄: the same job, a new seed
    VARY_SUBTLE = "vs"
    VARY_STRONG = "vt"
    VARY_REGION = "vr"
    UPSCALE_SUBTLE = "us"
    UPSCALE_CREATIVE = "uc"
    UPSCALE_SUBTLE_4X = "us4"
    UPSCALE_CREATIVE_4X = "uc4"
    ZOOM_OUT_2 = "z2"
    ZOOM_OUT_1_5 = "z15"
    ZOOM_CUSTOM = "zc"
    PAN_LEFT = "pl"
    PAN_RIGHT = "pr"
    PAN_UP = "pu"
    PAN_DOWN = "pd"
    MAKE_SQUARE = "sq"
    FAVORITE = "fav"  # ❤️: no render
    DETAILS = "info"  # ✉️: seed, job id and parameters, privately; no render
    DESCRIBE = "d"  # /describe: an image in, four prompts out (the worker's captioner)
    DESCRIBE_PICK = "dp"  # 1–4 under a /describe result: /imagine that prompt
    DESCRIBE_ALL = "da"  # Imagine all: /imagine the four prompts
    DESCRIBE_AGAIN = "dr"  # 🔄 under a /describe result: describe the image again, four other prompts

    @property
    def row(self) -> ActionRow:
        return ACTIONS[self]

    # The row's flags, for readable call sites (``action.remixable``).
    @property
    def renders(self) -> bool:
        return self.row.renders

    @property
    def needs_index(self) -> bool:
        return self.row.needs_index

    @property
    def remixable(self) -> bool:
        return self.row.remixable

    @property
    def new_seed(self) -> bool:
        return self.row.new_seed

    @property
    def label(self) -> str:
        return self.row.label


Where = Literal["command", "grid", "single", "prompts"]
Output = Literal["grid", "single", "prompts", "none"]


@dataclass(frozen=True)
class ActionRow:
    action: Action
    label: str  # the one English name: button text, history, captions ("{i}" = the image index, for U#/V#)
    where: Where  # a command, a button under a 2×2 grid, under a single image, or under /describe's prompts
    # What a job of this action shows: a new 2×2 grid, one image, four prompts (/describe), or nothing of its own
    # (answered at once, or by the /imagine or /describe jobs the press makes).
    output: Output
    emoji: str | None = None  # the icon on its button (Discord shows it beside the label, Telegram before it)
    icon_only: bool = False  # the button shows the icon alone (🔄, the pan arrows, ❤️)
    caption: str | None = None  # how a result is introduced: "**prompt** - <caption> by @user"; None: plain
    needs_index: bool = False  # names one of the four grid images (U1–U4, V1–V4)
    remixable: bool = False  # with Remix on, asks for an edited prompt first
    new_seed: bool = False  # the result should differ from the source: draw a new seed
    needs_mask: bool = False  # needs a region drawn in an editor (offered only where one exists)
    # What the engine paints (at most one is set; none for imagine and reroll):
    strength: Strength | None = None  # img2img variations
    upscale: Literal["subtle", "creative"] | None = None
    scale: int = 1  # output side ÷ source side (upscales)
    zoom: float | None = None  # outpaint: zoom out by this factor; 0.0 = asked for (Custom Zoom)
    pan: PanDirection | None = None
    square: bool = False

    @property
    def renders(self) -> bool:
        return self.output != "none" and self.action is not Action.UPSCALE

    def button_text(self, index: int = 0) -> str:
        return self.label.format(i=index)


_ROWS: tuple[ActionRow, ...] = (
    ActionRow(Action.IMAGINE, "Imagine", "command", "grid", new_seed=True),
    ActionRow(Action.BLEND, "Blend", "command", "grid", caption="Blend", new_seed=True),
    ActionRow(Action.UPSCALE, "U{i}", "grid", "single", needs_index=True),
    ActionRow(Action.REROLL, "Reroll", "grid", "grid", emoji="🔄", icon_only=True, remixable=True, new_seed=True),
    ActionRow(
        Action.VARIATION,
        "V{i}",
        "grid",
        "grid",
        caption="Variations (Strong)",
        needs_index=True,
        remixable=True,
        new_seed=True,
        strength="strong",
    ),
    ActionRow(
        Action.UPSCALE_SUBTLE,
        "Upscale (Subtle)",
        "single",
        "single",
        caption="Upscaled (Subtle)",
        upscale="subtle",
        scale=2,
    ),
    ActionRow(
        Action.UPSCALE_CREATIVE,
        "Upscale (Creative)",
        "single",
        "single",
        caption="Upscaled (Creative)",
        upscale="creative",
        scale=2,
    ),
    ActionRow(
        Action.UPSCALE_SUBTLE_4X,
        "Upscale 4x (Subtle)",
        "single",
        "single",
        caption="Upscaled 4x (Subtle)",
        upscale="subtle",
        scale=4,
    ),
    ActionRow(
        Action.UPSCALE_CREATIVE_4X,
        "Upscale 4x (Creative)",
        "single",
        "single",
        caption="Upscaled 4x (Creative)",
        upscale="creative",
        scale=4,
    ),
    ActionRow(
        Action.VARY_SUBTLE,
        "Vary (Subtle)",
        "single",
        "grid",
        emoji="🪄",
        caption="Variations (Subtle)",
        remixable=True,
        new_seed=True,
        strength="subtle",
    ),
    ActionRow(
        Action.VARY_STRONG,
        "Vary (Strong)",
        "single",
        "grid",
        emoji="🪄",
        caption="Variations (Strong)",
        remixable=True,
        new_seed=True,
        strength="strong",
    ),
    ActionRow(
        Action.VARY_REGION,
        "Vary (Region)",
        "single",
        "grid",
        emoji="🖌️",
        caption="Variations (Region)",
        new_seed=True,
        needs_mask=True,
    ),
    ActionRow(
        Action.ZOOM_OUT_2, "Zoom Out 2x", "single", "grid", emoji="🔍", caption="Zoom Out 2x", remixable=True, zoom=2.0
    ),
    ActionRow(
        Action.ZOOM_OUT_1_5,
        "Zoom Out 1.5x",
        "single",
        "grid",
        emoji="🔍",
        caption="Zoom Out 1.5x",
        remixable=True,
        zoom=1.5,
    ),
    ActionRow(
        Action.ZOOM_CUSTOM, "Custom Zoom", "single", "grid", emoji="🔍", caption="Custom Zoom", remixable=True, zoom=0.0
    ),
    ActionRow(Action.MAKE_SQUARE, "Make Square", "single", "grid", emoji="↔️", caption="Make Square", square=True),
    ActionRow(
        Action.PAN_LEFT,
        "Pan Left",
        "single",
        "grid",
        emoji="⬅️",
        icon_only=True,
        caption="Pan Left",
        remixable=True,
        pan="left",
    ),
    ActionRow(
        Action.PAN_RIGHT,
        "Pan Right",
        "single",
        "grid",
        emoji="➡️",
        icon_only=True,
        caption="Pan Right",
        remixable=True,
        pan="right",
    ),
    ActionRow(
        Action.PAN_UP, "Pan Up", "single", "grid", emoji="⬆️", icon_only=True, caption="Pan Up", remixable=True, pan="up"
    ),
    ActionRow(
        Action.PAN_DOWN,
        "Pan Down",
        "single",
        "grid",
        emoji="⬇️",
        icon_only=True,
        caption="Pan Down",
        remixable=True,
        pan="down",
    ),
    ActionRow(Action.FAVORITE, "Favorite", "single", "none", emoji="❤️", icon_only=True),
    ActionRow(Action.DETAILS, "Details", "single", "none", emoji="✉️"),
    # /describe and the buttons under its four prompts. The job service answers the buttons with /imagine jobs
    # (1–4, Imagine all) or a new /describe job (🔄); a stored job of these actions is only ever ``d``.
    ActionRow(Action.DESCRIBE, "Describe", "command", "prompts"),
    ActionRow(Action.DESCRIBE_PICK, "{i}", "prompts", "none", needs_index=True),
    ActionRow(Action.DESCRIBE_ALL, "Imagine all", "prompts", "none"),
    ActionRow(Action.DESCRIBE_AGAIN, "Describe again", "prompts", "none", emoji="🔄", icon_only=True),
)

ACTIONS: Mapping[Action, ActionRow] = {row.action: row for row in _ROWS}
assert set(ACTIONS) == set(Action), "every Action has exactly one row"

#: Every action a button can carry (commands are not buttons: a button id naming one is refused).
BUTTONS: tuple[Action, ...] = tuple(row.action for row in _ROWS if row.where != "command")

#: Buttons under a 2×2 grid, in Midjourney's order: U1–U4 🔄 on the first row, V1–V4 on the second.
GRID_ROWS: tuple[tuple[Action, ...], ...] = ((Action.UPSCALE, Action.REROLL), (Action.VARIATION,))
#: Buttons under one image, in Midjourney's order (rows of at most five: Discord's limit).
SINGLE_ROWS: tuple[tuple[Action, ...], ...] = (
    (Action.UPSCALE_SUBTLE, Action.UPSCALE_CREATIVE, Action.UPSCALE_SUBTLE_4X, Action.UPSCALE_CREATIVE_4X),
    (Action.VARY_SUBTLE, Action.VARY_STRONG, Action.VARY_REGION),
    (Action.ZOOM_OUT_2, Action.ZOOM_OUT_1_5, Action.ZOOM_CUSTOM, Action.MAKE_SQUARE),
    (Action.PAN_LEFT, Action.PAN_RIGHT, Action.PAN_UP, Action.PAN_DOWN, Action.FAVORITE),
    (Action.DETAILS,),
)
#: Buttons under /describe's four prompts, in Midjourney's order: 1–4 🔄, then Imagine all.
DESCRIBE_ROWS: tuple[tuple[Action, ...], ...] = (
    (Action.DESCRIBE_PICK, Action.DESCRIBE_AGAIN),
    (Action.DESCRIBE_ALL,),
)


def offered(action: Action, *, mask_editor: bool) -> bool:
    """Whether a button is shown. Vary (Region) needs an editor where the region is drawn; without one (no web front
    door configured) the button would promise what no user can do, so it is absent on every platform."""
    return mask_editor or not ACTIONS[action].needs_mask


def label_of(action: str) -> str:
    """A stored job's action as people read it ("sq" → "Make Square"); unknown values pass through."""
    try:
        return ACTIONS[Action(action)].label.replace("{i}", "#")
    except ValueError:
        return action
