"""A refusal in the user's language: the English message of a ``PromptError`` or ``ServiceError``, read back into its
catalog key and fields, then written in the other language.

The command language and the job service build their messages in English at the raise site and carry the option and
value, not a message key. Rather than change every raise site while the service is being refactored, each English
template of the ``refusal.*`` and ``service.*`` keys is turned into a pattern (``{option} {value} is out of range;
allowed {low}–{high}`` → ``^(?P<option>.+?) (?P<value>.+?) is out of range; allowed (?P<low>.+?)–(?P<high>.+?)$``)
and the message is matched against them, most literal text first. Field values that are themselves catalog terms
(``the model``, ``queued``) or whole refusals (``in your /settings: …``) are translated too. A message no template
matches is shown in English; the tests run a corpus of bad prompts through the real parser to keep that from
happening. The lasting fix, once the refactor lands, is a key and fields on the error itself (see ``localize``).
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from impasto.bots.i18n.catalog import DEFAULT_LOCALE, Catalogs, catalogs

PREFIXES = ("refusal.", "service.", "describe.refusal.", "decision.")
_TERM = "term."

#: Fields that never hold a space (an option as written, a number, a job id): matching them as one token keeps
#: "in your /settings: --chaos 200 is out of range…" from reading "in your /settings: --chaos" as the option.
SINGLE_TOKEN_FIELDS = frozenset(
    [
        "option",
        "value",
        "low",
        "high",
        "min",
        "max",
        "length",
        "raw",
        "total",
        "version",
        "index",
        "job",
        "first",
        "minutes",
        "left",
        "limit",
        "cost",
        "active",
        "running",
        "queued",
        "jobs",
        "date",
        "percent",
        "example",
        "fixed",
        "suggestion",
        "plan",
    ]
)
_SINGLE = r"\S+?"
_ANY = ".+?"


@dataclass(frozen=True)
class _Pattern:
    key: str
    regex: re.Pattern[str]
    literal_chars: int  # how much fixed text the template has: more is more specific


@dataclass(frozen=True)
class Matched:
    key: str
    fields: dict[str, str]


def compile_template(template: str) -> tuple[re.Pattern[str], int]:
    """A regex that matches what ``template.format(**fields)`` produces, capturing each field once."""
    parts: list[str] = ["^"]
    seen: set[str] = set()
    literal = 0
    for text, name, _spec, _conv in string.Formatter().parse(template):
        parts.append(re.escape(text))
        literal += len(text)
        if name is None:
            continue
        if name in seen:
            parts.append(f"(?P={name})")
        else:
            seen.add(name)
            parts.append(f"(?P<{name}>{_SINGLE if name in SINGLE_TOKEN_FIELDS else _ANY})")
    parts.append("$")
    return re.compile("".join(parts), re.DOTALL), literal


@cache
def _patterns(english: tuple[tuple[str, str], ...]) -> tuple[_Pattern, ...]:
    compiled = []
    for key, template in english:
        regex, literal = compile_template(template)
        compiled.append(_Pattern(key, regex, literal))
    return tuple(sorted(compiled, key=lambda p: -p.literal_chars))


def _english_refusals(cats: Catalogs, prefixes: Sequence[str]) -> tuple[tuple[str, str], ...]:
    english = cats.messages[DEFAULT_LOCALE]
    return tuple(sorted((k, v) for k, v in english.items() if k.startswith(tuple(prefixes))))


def match(message: str, *, cats: Catalogs | None = None, prefixes: Sequence[str] = PREFIXES) -> Matched | None:
    """The catalog key and fields an English refusal was written from, or None when no template produced it."""
    cats = cats or catalogs()
    for pattern in _patterns(_english_refusals(cats, prefixes)):
        found = pattern.regex.match(message)
        if found is not None:
            return Matched(pattern.key, {k: v for k, v in found.groupdict().items() if v is not None})
    return None


def localize(message: str, locale: str, *, cats: Catalogs | None = None, depth: int = 0) -> str:
    """``message`` (an English refusal) in ``locale``; the message itself for English or when nothing matches."""
    cats = cats or catalogs()
    if locale == DEFAULT_LOCALE:
        return message
    found = match(message, cats=cats)
    if found is None:
        return message
    fields = {name: _field(value, locale, cats, depth) for name, value in found.fields.items()}
    return cats.t(found.key, locale, **fields)


def _field(value: str, locale: str, cats: Catalogs, depth: int) -> str:
    term = cats.messages.get(locale, {}).get(_TERM + value)
    if term is not None:
        return term
    if depth < 2 and len(value) > 12:  # a refusal inside a refusal ("in your /settings: …", a credits remedy)
        return localize(value, locale, cats=cats, depth=depth + 1)
    return value


@cache
def _keys_by_english(english: tuple[tuple[str, str], ...]) -> dict[str, str]:
    return {text: key for key, text in english if "{" not in text}


def translate_line(line: str, locale: str, *, cats: Catalogs | None = None) -> str:
    """A whole line the core wrote in English (a withheld result's reason, a refusal) in ``locale``: a catalog
    message with exactly that English, else a refusal read back by ``localize``, else the line itself."""
    cats = cats or catalogs()
    if locale == DEFAULT_LOCALE:
        return line
    english = tuple(sorted(cats.messages[DEFAULT_LOCALE].items()))
    key = _keys_by_english(english).get(line)
    if key is not None:
        return cats.t(key, locale)
    return localize(line, locale, cats=cats)
