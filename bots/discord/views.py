"""Buttons and the settings panel. Every control is a ``DynamicItem``: discord.py matches the custom_id against the
template and rebuilds the item from it, so no process needs to have sent the message (restarts, shards)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Protocol, cast

import discord
from discord import ui

from impasto.bots.discord.custom_ids import BUTTON_TEMPLATE, SETTING_TEMPLATE, ButtonId, SettingId
from impasto.bots.i18n.actions import label as action_label
from impasto.bots.i18n.catalog import DEFAULT_LOCALE, catalogs, t
from impasto.queue.actions import GRID_ROWS, SINGLE_ROWS, Action, offered

_Interaction = discord.Interaction[Any]


class ControlHandler(Protocol):
    async def on_button(self, interaction: _Interaction, button: ButtonId) -> None: ...

    async def on_setting(self, interaction: _Interaction, setting: SettingId, values: Sequence[str]) -> None: ...


class HasControls(Protocol):
    controls: ControlHandler


def _controls(interaction: _Interaction) -> ControlHandler:
    return cast(HasControls, interaction.client).controls


def label_of(button: ButtonId, locale: str = DEFAULT_LOCALE) -> tuple[str | None, str | None]:
    """The button's text in ``locale`` and its icon, from the action table (icon-only buttons carry no text)."""
    row = button.action.row
    return (None if row.icon_only else action_label(row, locale, button.index)), row.emoji


class JobButton(ui.DynamicItem[ui.Button[Any]], template=BUTTON_TEMPLATE):
    def __init__(
        self,
        button: ButtonId,
        *,
        pressed: bool = False,
        row: int | None = None,
        locale: str = DEFAULT_LOCALE,
        label: str | None = None,
    ) -> None:
        """``label``: the text the button already shows (a message's buttons rebuilt keep their language)."""
        text, emoji = label_of(button, locale)
        label = label if label is not None and not button.action.row.icon_only else text
        style = discord.ButtonStyle.primary if pressed else discord.ButtonStyle.secondary
        super().__init__(ui.Button(label=label, emoji=emoji, style=style, custom_id=button.encode()), row=row)
        self.button = button

    @classmethod
    async def from_custom_id(cls, interaction: _Interaction, item: ui.Item[Any], match: re.Match[str], /) -> JobButton:
        return cls(ButtonId.decode(match.group(0)))

    async def callback(self, interaction: _Interaction) -> None:
        await _controls(interaction).on_button(interaction, self.button)


class SettingButton(ui.DynamicItem[ui.Button[Any]], template=SETTING_TEMPLATE):
    def __init__(self, setting: SettingId, label: str, *, on: bool = False, row: int | None = None) -> None:
        # Midjourney shows an active setting green.
        style = discord.ButtonStyle.success if on else discord.ButtonStyle.secondary
        super().__init__(ui.Button(label=label, style=style, custom_id=setting.encode()), row=row)
        self.setting = setting

    @classmethod
    async def from_custom_id(
        cls, interaction: _Interaction, item: ui.Item[Any], match: re.Match[str], /
    ) -> SettingButton:
        return cls(SettingId.decode(match.group(0)), "")

    async def callback(self, interaction: _Interaction) -> None:
        await _controls(interaction).on_setting(interaction, self.setting, ())


class ModelSelect(ui.DynamicItem[ui.Select[Any]], template=r"imp:set:model"):
    def __init__(
        self, models: Sequence[str] = (), current: str = "", *, row: int | None = None, locale: str = DEFAULT_LOCALE
    ) -> None:
        options = [discord.SelectOption(label=m, value=m, default=m == current) for m in models[:25]]
        placeholder = t("settings.model", locale)
        select: ui.Select[Any] = ui.Select(custom_id="imp:set:model", placeholder=placeholder, options=options)
        super().__init__(select, row=row)

    @classmethod
    async def from_custom_id(
        cls, interaction: _Interaction, item: ui.Item[Any], match: re.Match[str], /
    ) -> ModelSelect:
        return cls()

    async def callback(self, interaction: _Interaction) -> None:
        data = cast(dict[str, Any], interaction.data or {})
        values = data.get("values", [])
        await _controls(interaction).on_setting(interaction, SettingId("model"), [str(v) for v in values])


#: The reply-language select's value for "no choice: my Discord language".
AUTO_LANGUAGE = "auto"


class LanguageSelect(ui.DynamicItem[ui.Select[Any]], template=r"imp:set:language"):
    """The settings panel's language control: each language in its own name, and "automatic"."""

    def __init__(self, chosen: str | None = None, *, row: int | None = None, locale: str = DEFAULT_LOCALE) -> None:
        options = [
            discord.SelectOption(
                label=t("settings.language_auto", locale), value=AUTO_LANGUAGE, default=chosen is None
            ),
            *(
                discord.SelectOption(label=t(f"language.{name}", name), value=name, default=name == chosen)
                for name in catalogs().locales
            ),
        ]
        placeholder = t("settings.language_placeholder", locale)
        select: ui.Select[Any] = ui.Select(custom_id="imp:set:language", placeholder=placeholder, options=options)
        super().__init__(select, row=row)

    @classmethod
    async def from_custom_id(
        cls, interaction: _Interaction, item: ui.Item[Any], match: re.Match[str], /
    ) -> LanguageSelect:
        return cls()

    async def callback(self, interaction: _Interaction) -> None:
        data = cast(dict[str, Any], interaction.data or {})
        values = data.get("values", [])
        await _controls(interaction).on_setting(interaction, SettingId("language"), [str(v) for v in values])


DYNAMIC_ITEMS: tuple[type[ui.DynamicItem[Any]], ...] = (JobButton, ModelSelect, LanguageSelect, SettingButton)


def grid_view(job_id: str, pressed: frozenset[str] = frozenset(), *, locale: str = DEFAULT_LOCALE) -> ui.View:
    view = ui.View(timeout=None)
    for row, actions in enumerate(GRID_ROWS):
        for action in actions:
            indexes = range(1, 5) if action.needs_index else (0,)
            for index in indexes:
                button = ButtonId(job_id, action, index)
                view.add_item(JobButton(button, pressed=button.encode() in pressed, row=row, locale=locale))
    return view


def single_view(
    job_id: str, index: int, *, square: bool = False, mask_editor: bool = False, locale: str = DEFAULT_LOCALE
) -> ui.View:
    """Buttons under one image. Make Square is offered only for a non-square image, as Midjourney does; Vary (Region)
    only where a mask editor exists."""
    view = ui.View(timeout=None)
    for row, actions in enumerate(SINGLE_ROWS):
        for action in actions:
            if (action is Action.MAKE_SQUARE and square) or not offered(action, mask_editor=mask_editor):
                continue
            view.add_item(JobButton(ButtonId(job_id, action, index), row=row, locale=locale))
    return view


def with_pressed(message: discord.Message, custom_id: str) -> ui.View:
    """The message's own buttons again, the pressed one blue: rebuilt from the components Discord sent us."""
    view = ui.View(timeout=None)
    for row, component in enumerate(message.components):
        for child in getattr(component, "children", ()):
            if not isinstance(child, discord.Button) or child.custom_id is None:
                continue
            try:
                button = ButtonId.decode(child.custom_id)
            except ValueError:
                continue
            pressed = child.custom_id == custom_id or child.style is discord.ButtonStyle.primary
            view.add_item(JobButton(button, pressed=pressed, row=row, label=child.label))
    return view


def settings_view(
    *,
    models: Sequence[str],
    model: str,
    mode: str,
    public: bool,
    remix: bool,
    raw: bool,
    stylize: int | None,
    language: str | None = None,
    locale: str = DEFAULT_LOCALE,
) -> ui.View:
    """The panel in ``locale``; ``language`` is the reply language the user chose (None: automatic)."""
    view = ui.View(timeout=None)
    view.add_item(ModelSelect(models, model, row=0, locale=locale))
    view.add_item(SettingButton(SettingId("raw"), t("settings.raw", locale), on=raw, row=1))
    for value, key in ((50, "low"), (100, "med"), (250, "high"), (750, "very_high")):
        label = t(f"settings.stylize_{key}", locale)
        view.add_item(SettingButton(SettingId("stylize", str(value)), label, on=stylize == value, row=1))
    view.add_item(SettingButton(SettingId("public"), t("settings.public", locale), on=public, row=2))
    view.add_item(SettingButton(SettingId("remix"), t("settings.remix", locale), on=remix, row=2))
    for name in ("turbo", "fast", "relax"):
        view.add_item(SettingButton(SettingId("mode", name), t(f"settings.{name}", locale), on=mode == name, row=3))
    view.add_item(SettingButton(SettingId("reset"), t("settings.reset", locale), row=3))
    view.add_item(LanguageSelect(language, row=4, locale=locale))
    return view
