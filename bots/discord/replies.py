"""The private one-message answers of the text commands (/info, /history, /prefer…, /server), from the core's views,
in the user's language (``locale``: a catalog name).

Everything the user typed is escaped here; the result goes out with ``texts.NO_MENTIONS``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from impasto.bots.discord import texts
from impasto.bots.i18n.catalog import DEFAULT_LOCALE, t
from impasto.bots.i18n.panels import info_rows, status_name
from impasto.bots.service.views import GuildView, InfoView, JobView


def mode_reply(mode: str, locale: str = DEFAULT_LOCALE) -> str:
    """What /fast, /relax and /turbo answer."""
    return t(f"reply.mode_{mode}", locale)


def visibility_reply(visibility: str, locale: str = DEFAULT_LOCALE) -> str:
    """What /public and /stealth answer."""
    return t("reply.stealth" if visibility == "stealth" else "reply.public", locale)


def info(view: InfoView, locale: str = DEFAULT_LOCALE) -> str:
    running = ", ".join(view.running_jobs)
    return "\n".join(f"**{label}**: {texts.escape(value)}" for label, value in info_rows(view, locale, running=running))


def details(view: JobView, locale: str = DEFAULT_LOCALE) -> str:
    params = ", ".join(
        f"{key}={value}" for key, value in sorted(view.params.items()) if value not in (None, [], {}, "", False)
    )
    return "\n".join(
        [
            f"**{t('details.job_id', locale)}**: {view.job_id}",
            f"**{t('details.seed', locale)}**: {view.seed}",
            f"**{t('details.prompt', locale)}**: {texts.escape(view.display)}",
            f"**{t('details.model', locale)}**: {view.model} · **{t('details.mode', locale)}**: {view.mode} · "
            f"**{t('details.status', locale)}**: {status_name(view.status, locale)}",
            f"**{t('details.parameters', locale)}**: {texts.escape(params)}"[: texts.MAX_MESSAGE // 2],
        ]
    )


MESSAGE_CHARS = 2000  # Discord's limit for a message's content


def history(views: Sequence[JobView], gallery_url: str | None = None, locale: str = DEFAULT_LOCALE) -> str:
    """The recent jobs, one a line, under a link to the user's gallery when the web front door is there (the lines
    that would pass Discord's 2,000 characters are left out: the gallery has them all)."""
    lines = [gallery_line(gallery_url, locale)] if gallery_url else []
    if not views:
        lines.append(t("history.try_imagine", locale))
    for v in views:
        line = f"`{v.job_id}` **{texts.shown_prompt(v.display)[:150]}** ({status_name(v.status, locale)})"
        if sum(len(x) + 1 for x in lines) + len(line) > MESSAGE_CHARS:
            break
        lines.append(line)
    return "\n".join(lines)


def gallery_line(url: str, locale: str = DEFAULT_LOCALE) -> str:
    return t("info.gallery", locale, url=url)


def public_gallery_line(url: str, locale: str = DEFAULT_LOCALE) -> str:
    return t("info.public_gallery", locale, url=url)


def suffix(value: str, locale: str = DEFAULT_LOCALE) -> str:
    return t("reply.suffix_set", locale, suffix=texts.code(value)) if value else t("reply.suffix_cleared", locale)


def remix(on: bool, locale: str = DEFAULT_LOCALE) -> str:
    return t("reply.remix_on" if on else "reply.remix_off", locale)


def option_set(name: str, options: Mapping[str, str], locale: str = DEFAULT_LOCALE) -> str:
    bare = name.removeprefix("--").lower()
    if bare in options:
        return t("reply.option_set", locale, name=texts.code(bare), value=texts.code(options[bare]))
    return t("reply.option_deleted", locale, name=texts.code(bare))


def option_list(options: Mapping[str, str], locale: str = DEFAULT_LOCALE) -> str:
    if not options:
        return t("reply.no_options", locale)
    return "\n".join(f"`--{texts.code(k)}`: `{texts.code(v)}`" for k, v in options.items())


def server(guild: GuildView, plans: Sequence[str], locale: str = DEFAULT_LOCALE) -> str:
    channels = ", ".join(f"<#{int(c)}>" for c in guild.allowed_channels) or t("server.every_channel", locale)
    roles = ", ".join(f"<@&{int(r)}> → {texts.escape(p)}" for r, p in guild.role_plans.items()) or t(
        "info.none", locale
    )
    language = t(f"language.{guild.locale}", guild.locale) if guild.locale else t("server.language_auto", locale)
    return "\n".join(
        [
            f"**{t('server.channels', locale)}**: {channels}",
            f"**{t('server.role_plans', locale)}**: {roles}",
            f"**{t('server.plans', locale)}**: {', '.join(sorted(plans))}",
            f"**{t('server.default_language', locale)}**: {language}",
        ]
    )
