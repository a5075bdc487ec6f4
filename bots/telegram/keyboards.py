"""Inline keyboards: ❌ under a job in progress, the grid's U/🔄/V rows, the single image's tools, ``/settings``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from impasto.bots.telegram.callback_data import (
    CancelButton,
    DocumentButton,
    JobButton,
    SettingsButton,
    encode,
    is_token,
)
from impasto.queue.actions import GRID_ROWS, SINGLE_ROWS, Action, offered


def _job(label: str, action: Action, job_id: str, index: int = 0) -> InlineKeyboardButton:
    return InlineKeyboardButton(label, callback_data=encode(JobButton(action, job_id, index)))


def cancel_keyboard(job_id: str) -> InlineKeyboardMarkup:
    """Under a job's progress message while it waits or paints: its owner may stop it (refunded)."""
    return InlineKeyboardMarkup([[InlineKeyboardButton("❌ Cancel", callback_data=encode(CancelButton(job_id)))]])


def _label(action: Action, index: int = 0) -> str:
    row = action.row
    if row.icon_only:
        return row.emoji or row.button_text(index)
    return f"{row.emoji} {row.button_text(index)}" if row.emoji else row.button_text(index)


def _file_button(job_id: str) -> InlineKeyboardButton:
    return InlineKeyboardButton("📄 Full-res file", callback_data=encode(DocumentButton(job_id)))


def grid_keyboard(job_id: str) -> InlineKeyboardMarkup:
    """``U1 U2 U3 U4 🔄`` / ``V1 V2 V3 V4`` / a row for the full-resolution grid file."""
    rows: list[list[InlineKeyboardButton]] = []
    for actions in GRID_ROWS:
        rows.append(
            [
                _job(_label(action, i), action, job_id, i)
                for action in actions
                for i in (range(1, 5) if action.needs_index else (0,))
            ]
        )
    return InlineKeyboardMarkup([*rows, [_file_button(job_id)]])


# Custom Zoom asks for a factor in a Discord modal; Telegram has no modal, so it is not offered here.
_NOT_ON_TELEGRAM = frozenset({Action.ZOOM_CUSTOM})


def single_keyboard(job_id: str, *, mask_editor: bool = False) -> InlineKeyboardMarkup:
    """The tools under one image, in Midjourney's order; details and the file come back to the presser. Vary (Region)
    is offered only where a mask editor exists."""
    rows: list[list[InlineKeyboardButton]] = []
    for actions in SINGLE_ROWS:
        row = [
            _job(_label(action), action, job_id)
            for action in actions
            if action not in _NOT_ON_TELEGRAM and offered(action, mask_editor=mask_editor)
        ]
        if row:
            rows.append(row)
    rows[-1].append(_file_button(job_id))
    return InlineKeyboardMarkup(rows)


# The panel: (key, value, label). Values are what SettingsButton carries; handlers map them to the service.
STYLIZE_PRESETS: Mapping[str, int] = {"low": 50, "med": 100, "high": 250, "vhigh": 750}
SETTINGS_ROWS: Sequence[Sequence[tuple[str, str, str]]] = (
    (("raw", "toggle", "📷 RAW Mode"),),
    (
        ("stylize", "low", "🖌️ Stylize low"),
        ("stylize", "med", "🖌️ Stylize med"),
        ("stylize", "high", "🖌️ Stylize high"),
        ("stylize", "vhigh", "🖌️ Stylize very high"),
    ),
    (("visibility", "public", "🧍 Public"), ("visibility", "stealth", "🕵️ Stealth")),
    (("remix", "toggle", "🎛️ Remix mode"),),
    (("variation", "high", "High Variation"), ("variation", "low", "Low Variation")),
    (("mode", "turbo", "⚡ Turbo"), ("mode", "fast", "🐇 Fast"), ("mode", "relax", "🐢 Relax")),
    (("reset", "all", "Reset settings"),),
)


def settings_keyboard(current: Mapping[str, str], models: Sequence[str]) -> InlineKeyboardMarkup:
    """The ``/settings`` panel; ``current`` maps a key to its active value (``"on"`` for toggles), marked ✅."""
    rows: list[list[InlineKeyboardButton]] = []
    model_row = [
        InlineKeyboardButton(
            ("✅ " if current.get("model") == name else "") + name,
            callback_data=encode(SettingsButton("model", name)),
        )
        for name in models
        if is_token(name)
    ][:6]
    if model_row:
        rows.append(model_row)
    for row in SETTINGS_ROWS:
        buttons = []
        for key, value, label in row:
            active = current.get(key) == ("on" if value == "toggle" else value)
            buttons.append(
                InlineKeyboardButton(
                    ("✅ " if active else "") + label, callback_data=encode(SettingsButton(key, value))
                )
            )
        rows.append(buttons)
    return InlineKeyboardMarkup(rows)
