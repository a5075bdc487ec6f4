"""Modals: Remix (edit the prompt before a variation, reroll, pan or zoom) and Custom Zoom (the prompt with --zoom).

Their submissions are served by the process that opened them (discord.py keeps an open modal in memory), which is
the same process that handled the button a moment earlier.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import discord
from discord import ui

from impasto.bots.i18n.catalog import DEFAULT_LOCALE, t
from impasto.queue.actions import Action

Submit = Callable[[discord.Interaction[Any], str], Awaitable[None]]
MAX_PROMPT = 4000  # Discord's limit for a text input


class PromptModal(ui.Modal):
    def __init__(self, title: str, prompt: str, on_submit: Submit, *, locale: str = DEFAULT_LOCALE) -> None:
        super().__init__(title=title, timeout=15 * 60)
        self.prompt: ui.TextInput[PromptModal] = ui.TextInput(
            label=t("modal.prompt", locale),
            custom_id="prompt",
            style=discord.TextStyle.paragraph,
            default=prompt[:MAX_PROMPT],
            max_length=MAX_PROMPT,
        )
        self.add_item(self.prompt)
        self._on_submit = on_submit

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        await self._on_submit(interaction, self.prompt.value)


def remix_modal(prompt: str, on_submit: Submit, *, locale: str = DEFAULT_LOCALE) -> PromptModal:
    return PromptModal(t("modal.remix", locale), prompt, on_submit, locale=locale)


def custom_zoom_modal(prompt: str, on_submit: Submit, *, locale: str = DEFAULT_LOCALE) -> PromptModal:
    """Midjourney pre-fills the prompt with ``--zoom 2``; the user edits the factor (1–2)."""
    text = prompt if "--zoom" in prompt else f"{prompt} --zoom 2"
    return PromptModal(t("modal.zoom", locale), text, on_submit, locale=locale)


def modal_for(action: Action, prompt: str, on_submit: Submit, *, locale: str = DEFAULT_LOCALE) -> PromptModal:
    if action is Action.ZOOM_CUSTOM:
        return custom_zoom_modal(prompt, on_submit, locale=locale)
    return remix_modal(prompt, on_submit, locale=locale)
