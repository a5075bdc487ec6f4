"""Slash commands in the user's Discord language: a ``discord.app_commands.Translator`` over the catalogs.

discord.py asks the tree's translator, for every Discord locale, to translate each command's and option's
description and each choice's name when it syncs; Discord then shows each user their client's language. The cogs
keep writing plain English (``description="Switch to fast mode"``): this translator finds the English text among the
catalog's ``discord.*`` messages and answers the locale's translation. Command and option *names* stay English, so
``/imagine`` is typed the same everywhere (and the prompt language's ``--parameters`` are English anyway).

Wiring: ``await bot.tree.set_translator(CatalogTranslator())`` before the commands are synced (``setup_hook``).
"""

from __future__ import annotations

from discord import Locale, app_commands
from discord.app_commands import TranslationContextLocation, TranslationContextTypes, locale_str

from impasto.bots.i18n.catalog import DEFAULT_LOCALE, Catalogs, catalogs
from impasto.bots.i18n.locale import served_locale

PREFIX = "discord."

_TRANSLATED = {
    TranslationContextLocation.command_description,
    TranslationContextLocation.group_description,
    TranslationContextLocation.parameter_description,
    TranslationContextLocation.choice_name,
}


class CatalogTranslator(app_commands.Translator):
    def __init__(self, cats: Catalogs | None = None) -> None:
        super().__init__()
        self.cats = cats or catalogs()
        english = self.cats.messages[DEFAULT_LOCALE]
        self._key_of = {text: key for key, text in english.items() if key.startswith(PREFIX)}

    async def translate(self, string: locale_str, locale: Locale, context: TranslationContextTypes) -> str | None:
        return self.translated(string.message, locale.value, context.location)

    def translated(self, english: str, discord_locale: str, location: TranslationContextLocation) -> str | None:
        """The text for one Discord locale ("zh-CN"), or None: Discord then shows the English."""
        if location not in _TRANSLATED:
            return None
        key = self._key_of.get(english)
        locale = served_locale(discord_locale, self.cats.locales)
        if key is None or locale is None or locale == DEFAULT_LOCALE:
            return None
        text = self.cats.messages.get(locale, {}).get(key)
        # Discord caps descriptions at 100 characters (choice names too).
        return text[:100] if text else None
