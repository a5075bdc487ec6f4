"""What impasto says, in every language it speaks: ``t(key, locale, **fields)`` over gettext PO catalogs.

One PO file per language in ``locales/`` (``en.po``, ``zh_Hans.po``), read with Babel at first use. The message ids
are stable keys (``"refusal.out_of_range"``, ``"info.plan"``), the translations Python format strings with named
fields (``"{option} {value} 超出范围；允许 {low}–{high}"``). Each Chinese entry carries its English as a translator
comment, so Poedit, Weblate or a plain editor show what to translate.

Why gettext PO with Babel (over Fluent or a typed Python table): a third language is a translation job: copy
``en.po`` to ``ja.po``, translate, and it is served, no code change; PO is what every translation tool and service
reads; Babel is already the library for locale data (and ``babel.messages`` reads PO directly, so the repository
carries no compiled ``.mo``). Fluent would model plurals better, but impasto's texts carry numbers as fields with
the unit written out ("{count} jobs"), and Chinese has no plural forms.

Field values are inserted as they are: the platform adapter escapes user text for its markup *before* passing it
(as it does for English today).
"""

from __future__ import annotations

import logging
import string
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from babel.messages.pofile import read_po

log = logging.getLogger("impasto.i18n")

LOCALES_DIR = Path(__file__).with_name("locales")

#: The language every other falls back to, and the one the keys' English texts are written in.
DEFAULT_LOCALE = "en"


@dataclass(frozen=True)
class Catalogs:
    """Every language's messages: ``messages[locale][key]`` is a format string."""

    messages: Mapping[str, Mapping[str, str]]

    @property
    def locales(self) -> tuple[str, ...]:
        """The languages served, the default first."""
        return (DEFAULT_LOCALE, *sorted(loc for loc in self.messages if loc != DEFAULT_LOCALE))

    def template(self, key: str, locale: str) -> str | None:
        found = self.messages.get(locale, {}).get(key)
        return found if found is not None else self.messages.get(DEFAULT_LOCALE, {}).get(key)

    def t(self, key: str, locale: str, /, **fields: object) -> str:
        """The message ``key`` in ``locale`` (English when that language lacks it), its fields filled in.

        A template whose fields do not fit what the caller passed is a bug in a catalog; it is logged and the English
        text is used instead, so a user never sees a raw ``{field}``. An unknown key comes back as the key itself.
        """
        template = self.template(key, locale)
        if template is None:
            log.error("no message %r in any catalog", key)
            return key
        try:
            return template.format_map(fields)
        except (KeyError, IndexError, ValueError) as exc:
            english = self.messages.get(DEFAULT_LOCALE, {}).get(key, key)
            log.error("message %r in %s does not fit its fields (%s); English used", key, locale, exc)
            try:
                return english.format_map(fields)
            except (KeyError, IndexError, ValueError):
                return english


def load_catalogs(directory: Path = LOCALES_DIR) -> Catalogs:
    """Read every ``*.po`` in ``directory``; an untranslated or fuzzy entry counts as missing (English is used)."""
    messages: dict[str, dict[str, str]] = {}
    for path in sorted(directory.glob("*.po")):
        with path.open("rb") as handle:
            catalog = read_po(handle, locale=None, abort_invalid=True)
        entries: dict[str, str] = {}
        for message in catalog:
            if not message.id or not isinstance(message.id, str) or not isinstance(message.string, str):
                continue
            if message.string and not message.fuzzy:
                entries[message.id] = message.string
        messages[path.stem] = entries
    if DEFAULT_LOCALE not in messages:
        raise FileNotFoundError(f"{directory / (DEFAULT_LOCALE + '.po')} is missing: English is every key's fallback")
    return Catalogs(messages)


@cache
def catalogs() -> Catalogs:
    """The shipped catalogs, read once per process (package data, like the shipped plans and model registry)."""
    return load_catalogs()


def t(key: str, locale: str, /, **fields: object) -> str:
    """``catalogs().t``: the message ``key`` in ``locale`` with ``fields`` filled in (a field may be named
    ``key`` or ``locale``: the two come first, by position)."""
    return catalogs().t(key, locale, **fields)


def field_names(template: str) -> set[str]:
    """The named fields of a format string (``"{a} and {b}"`` → ``{"a", "b"}``)."""
    return {name for _text, name, _spec, _conv in string.Formatter().parse(template) if name}
