"""Inline keyboards: ❌ under a job in progress, the grid's U/🔄/V rows, the single image's tools, ``/settings``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from impasto.bots.i18n.actions import label as action_label
from impasto.bots.i18n.catalog import DEFAULT_LOCALE, catalogs, t
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


def cancel_keyboard(job_id: str, *, locale: str = DEFAULT_LOCALE) -> InlineKeyboardMarkup:
    """Under a job's progress message while it waits or paints: its owner may stop it (refunded)."""
    button = InlineKeyboardButton(t("tg.cancel_button", locale), callback_data=encode(CancelButton(job_id)))
    return InlineKeyboardMarkup([[button]])


def label(action: Action, index: int = 0, locale: str = DEFAULT_LOCALE) -> str:
    """A button's text in ``locale``: its icon, then its words (an icon-only button: the icon alone)."""
    row = action.row
    words = action_label(row, locale, index)
    if row.icon_only:
        return row.emoji or words
    return f"{row.emoji} {words}" if row.emoji else words


def _file_button(job_id: str, locale: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(t("tg.file_button", locale), callback_data=encode(DocumentButton(job_id)))


def grid_keyboard(job_id: str, *, locale: str = DEFAULT_LOCALE) -> InlineKeyboardMarkup:
    """``U1 U2 U3 U4 🔄`` / ``V1 V2 V3 V4`` / a row for the full-resolution grid file."""
    rows: list[list[InlineKeyboardButton]] = []
    for actions in GRID_ROWS:
        rows.append(
            [
                _job(label(action, i, locale), action, job_id, i)
                for action in actions
                for i in (range(1, 5) if action.needs_index else (0,))
            ]
        )
    return InlineKeyboardMarkup([*rows, [_file_button(job_id, locale)]])


# Custom Zoom asks for a factor in a Discord modal; Telegram has no modal, so it is not offered here.
_NOT_ON_TELEGRAM = frozenset({Action.ZOOM_CUSTOM})


def single_keyboard(job_id: str, *, mask_editor: bool = False, locale: str = DEFAULT_LOCALE) -> InlineKeyboardMarkup:
    """The tools under one image, in Midjourney's order; details and the file come back to the presser. Vary (Region)
    is offered only where a mask editor exists."""
    rows: list[list[InlineKeyboardButton]] = []
    for actions in SINGLE_ROWS:
        row = [
            _job(label(action, 0, locale), action, job_id)
            for action in actions
            if action not in _NOT_ON_TELEGRAM and offered(action, mask_editor=mask_editor)
        ]
        if row:
            rows.append(row)
    rows[-1].append(_file_button(job_id, locale))
    return InlineKeyboardMarkup(rows)


# The panel: (key, value, label's catalog key). Values are what SettingsButton carries; handlers map them to the
# service.
STYLIZE_PRESETS: Mapping[str, int] = {"low": 50, "med": 100, "high": 250, "vhigh": 750}
SETTINGS_ROWS: Sequence[Sequence[tuple[str, str, str]]] = (
    (("raw", "toggle", "tg.settings_raw"),),
    (
        ("stylize", "low", "tg.settings_stylize_low"),
        ("stylize", "med", "tg.settings_stylize_med"),
        ("stylize", "high", "tg.settings_stylize_high"),
        ("stylize", "vhigh", "tg.settings_stylize_vhigh"),
    ),
    (("visibility", "public", "tg.settings_public"), ("visibility", "stealth", "tg.settings_stealth")),
    (("remix", "toggle", "tg.settings_remix"),),
    (("variation", "high", "tg.settings_variation_high"), ("variation", "low", "tg.settings_variation_low")),
    (
        ("mode", "turbo", "tg.settings_turbo"),
        ("mode", "fast", "tg.settings_fast"),
        ("mode", "relax", "tg.settings_relax"),
    ),
    (("reset", "all", "tg.settings_reset"),),
)
#: The language row's value for "no choice: my Telegram app's language".
AUTO_LANGUAGE = "auto"


def settings_keyboard(
    current: Mapping[str, str], models: Sequence[str], *, locale: str = DEFAULT_LOCALE
) -> InlineKeyboardMarkup:
    """The ``/settings`` panel in ``locale``; ``current`` maps a key to its active value (``"on"`` for toggles),
    marked ✅. Its last row is the reply language: automatic, or each language in its own name."""
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
        for key, value, text_key in row:
            active = current.get(key) == ("on" if value == "toggle" else value)
            buttons.append(
                InlineKeyboardButton(
                    ("✅ " if active else "") + t(text_key, locale), callback_data=encode(SettingsButton(key, value))
                )
            )
        rows.append(buttons)
    languages = [(AUTO_LANGUAGE, t("tg.settings_language_auto", locale))]
    languages += [(name, t(f"language.{name}", name)) for name in catalogs().locales]
    chosen = current.get("language", AUTO_LANGUAGE)
    rows.append(
        [
            InlineKeyboardButton(
                ("✅ " if chosen == value else "") + text, callback_data=encode(SettingsButton("language", value))
            )
            for value, text in languages
        ]
    )
    return InlineKeyboardMarkup(rows)
