"""Which language to answer in: the user's own choice, else their app's language, else their server's default.

Platforms name languages differently: Discord's interaction locale is ``zh-CN``, ``zh-TW``, ``en-US``, ``pt-BR``;
Telegram's ``language_code`` is an IETF tag such as ``zh-hans``, ``zh-hant``, ``en`` or ``pt-br``. ``served_locale``
maps either to a catalog impasto has (``en``, ``zh_Hans``), or None when it has none for that language.
"""

from __future__ import annotations

from collections.abc import Iterable

from impasto.bots.i18n.catalog import DEFAULT_LOCALE, catalogs

_TRADITIONAL = {"hant", "tw", "hk", "mo"}


def served_locale(tag: str | None, served: Iterable[str] | None = None) -> str | None:
    """The catalog that serves a platform's language tag, or None (unknown, empty, or a language not served).

    Chinese picks its script (Traditional for ``zh-TW``, ``zh-HK``, ``zh-Hant``; Simplified otherwise) and falls
    back to the other script's catalog rather than to English; other languages try ``ll_RR`` then ``ll``.
    """
    if not tag:
        return None
    have = set(served if served is not None else catalogs().locales)
    parts = [p for p in tag.strip().replace("_", "-").lower().split("-") if p]
    if not parts or not parts[0].isalpha():
        return None
    language = parts[0]
    if language == "zh":
        hant = any(p in _TRADITIONAL for p in parts[1:])
        candidates = ["zh_Hant", "zh_Hans"] if hant else ["zh_Hans", "zh_Hant"]
    else:
        candidates = [f"{language}_{parts[1].upper()}"] if len(parts) > 1 and len(parts[1]) == 2 else []
        candidates.append(language)
    # An exact catalog name (what /settings stores) is served as it is.
    exact = tag.strip()
    if exact in have:
        return exact
    return next((c for c in candidates if c in have), None)


def negotiate(
    *,
    chosen: str | None = None,
    platform: str | None = None,
    server: str | None = None,
    served: Iterable[str] | None = None,
) -> str:
    """The reply language: ``chosen`` (the user's /settings), else ``platform`` (Discord's interaction locale or
    Telegram's ``language_code``), else ``server`` (the server's /server language), else English."""
    have = list(served if served is not None else catalogs().locales)
    for tag in (chosen, platform, server):
        found = served_locale(tag, have)
        if found is not None:
            return found
    return DEFAULT_LOCALE


#: What people type for a language in /settings or /server language, beyond the tags ``served_locale`` reads.
_NAMES = {"english": "en", "英文": "en", "英语": "en", "chinese": "zh", "中文": "zh", "简体中文": "zh", "汉语": "zh"}


def choose_locale(text: str, *, locale: str = DEFAULT_LOCALE, served: Iterable[str] | None = None) -> str | None:
    """A language someone chose by name or tag ("中文", "zh-CN", "English", "zh_Hans"); None for "auto" / "default".

    Raises ``ValueError`` with the catalog's ``language.unknown`` message (in ``locale``) naming the choices.
    """
    from impasto.bots.i18n.catalog import t  # the message catalogs are read only when one is needed

    have = list(served if served is not None else catalogs().locales)
    wanted = text.strip()
    if wanted.lower() in ("auto", "default", "自动", "默认"):
        return None
    found = served_locale(_NAMES.get(wanted.lower(), wanted), have)
    if found is None:
        choices = ", ".join(t(f"language.{name}", name) for name in have)
        raise ValueError(t("language.unknown", locale, locale=wanted[:40], choices=choices))
    return found


def accept_language(header: str | None, served: Iterable[str] | None = None) -> str | None:
    """The catalog a browser's ``Accept-Language`` header asks for ("zh-CN,zh;q=0.9,en;q=0.8" → ``zh_Hans``), by
    quality then order, or None when it names no language impasto speaks (``*`` names none). Babel parses each tag
    (``babel.core.parse_locale``, so a malformed one is skipped); ``served_locale`` picks the catalog."""
    from babel.core import parse_locale

    if not header:
        return None
    have = list(served if served is not None else catalogs().locales)
    ranked: list[tuple[float, int, str]] = []
    for order, part in enumerate(header.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        tag = tag.strip()
        if not tag or tag == "*" or quality <= 0:
            continue
        try:
            parse_locale(tag, sep="-")
        except ValueError:
            continue
        ranked.append((-quality, order, tag))
    for _q, _order, tag in sorted(ranked):
        found = served_locale(tag, have)
        if found is not None:
            return found
    return None


def html_lang(locale: str) -> str:
    """A catalog name as an HTML ``lang`` / BCP 47 tag: ``zh_Hans`` → ``zh-Hans``."""
    return locale.replace("_", "-")
