"""Inline keyboards: ❌ under a job in progress, the grid's U/🔄/V rows, the single image's tools, ``/settings``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from impasto.bots.service.actions import Action
from impasto.bots.telegram.callback_data import (
    CancelButton,
    DocumentButton,
    JobButton,
    SettingsButton,
    encode,
    is_token,
)


def _job(label: str, action: Action, job_id: str, index: int = 0) -> InlineKeyboardButton:
    return InlineKeyboardButton(label, callback_data=encode(JobButton(action, job_id, index)))


def cancel_keyboard(job_id: str) -> InlineKeyboardMarkup:
    """Under a job's progress message while it waits or paints: its owner may stop it (refunded)."""
    return InlineKeyboardMarkup([[InlineKeyboardButton("❌ Cancel", callback_data=encode(CancelButton(job_id)))]])


def grid_keyboard(job_id: str) -> InlineKeyboardMarkup:
    """``U1 U2 U3 U4 🔄`` / ``V1 V2 V3 V4`` / a row for the full-resolution grid file."""
    upscale = [_job(f"U{i}", Action.UPSCALE, job_id, i) for i in range(1, 5)]
    variation = [_job(f"V{i}", Action.VARIATION, job_id, i) for i in range(1, 5)]
    return InlineKeyboardMarkup(
        [
            [*upscale, _job("🔄", Action.REROLL, job_id)],
            variation,
            [InlineKeyboardButton("📄 Full-res file", callback_data=encode(DocumentButton(job_id)))],
        ]
    )


def single_keyboard(job_id: str) -> InlineKeyboardMarkup:
    """The tools under one image, in Midjourney's order; details and the file come back to the presser."""
    return InlineKeyboardMarkup(
        [
            [
                _job("Upscale (Subtle)", Action.UPSCALE_SUBTLE, job_id),
                _job("Upscale (Creative)", Action.UPSCALE_CREATIVE, job_id),
            ],
            [
                _job("🪄 Vary (Subtle)", Action.VARY_SUBTLE, job_id),
                _job("🪄 Vary (Strong)", Action.VARY_STRONG, job_id),
            ],
            [
                _job("🔍 Zoom Out 2x", Action.ZOOM_OUT_2, job_id),
                _job("🔍 Zoom Out 1.5x", Action.ZOOM_OUT_1_5, job_id),
                _job("↔️ Make Square", Action.MAKE_SQUARE, job_id),
            ],
            [
                _job("⬅️", Action.PAN_LEFT, job_id),
                _job("➡️", Action.PAN_RIGHT, job_id),
                _job("⬆️", Action.PAN_UP, job_id),
                _job("⬇️", Action.PAN_DOWN, job_id),
            ],
            [
                _job("❤️", Action.FAVORITE, job_id),
                _job("✉️ Details", Action.DETAILS, job_id),
                InlineKeyboardButton("📄 Full-res file", callback_data=encode(DocumentButton(job_id))),
            ],
        ]
    )


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
