"""Texts built from the job service's views: /info, /settings, /history, /prefer and a job's details."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from impasto.bots.i18n.catalog import DEFAULT_LOCALE, t
from impasto.bots.i18n.panels import info_rows, status_name
from impasto.bots.service.views import InfoView, JobView, SettingsView
from impasto.bots.telegram.escaping import code, text
from impasto.bots.telegram.keyboards import AUTO_LANGUAGE, STYLIZE_PRESETS


def info_text(info: InfoView, locale: str = DEFAULT_LOCALE) -> str:
    running = ", ".join(info.running_jobs)
    rows = info_rows(info, locale, running=running)
    return "\n".join([f"<b>{t('info.title', locale)}</b>", *(f"<b>{text(k)}</b>: {text(v)}" for k, v in rows)])


def settings_state(view: SettingsView) -> dict[str, str]:
    """The panel's active values, keyed as the keyboard's buttons are."""
    state = {
        "mode": view.mode,
        "visibility": view.visibility,
        "variation": view.variation,
        "remix": "on" if view.remix else "off",
        "raw": "on" if view.raw else "off",
    }
    if view.model:
        state["model"] = view.model
    preset = next((name for name, value in STYLIZE_PRESETS.items() if value == view.stylize), None)
    if preset:
        state["stylize"] = preset
    state["language"] = view.language or AUTO_LANGUAGE
    return state


def settings_text(view: SettingsView) -> str:
    """The panel's text, in the language replies come in (``view.locale``), naming it."""
    locale = view.locale
    current = view.settings_text or t("settings.none", locale)
    suffix = view.suffix or t("settings.none", locale)
    language = t(f"language.{locale}", locale)
    return "\n".join(
        [
            t("tg.settings_heading", locale),
            t("tg.settings_current", locale, current=code(current, 300)),
            t("tg.settings_suffix", locale, suffix=code(suffix, 300)),
            text(t("settings.language", locale, language=language)),
        ]
    )


def history_text(views: Sequence[JobView], locale: str = DEFAULT_LOCALE) -> str:
    if not views:
        return t("history.empty_start", locale)
    lines = [t("history.title", locale)]
    for view in views:
        status = status_name(view.status, locale)
        lines.append(f"{code(view.job_id)} {text(status, 12)} · {text(view.display or view.prompt, 80)}")
    return "\n".join(lines)


def options_text(options: Mapping[str, str], locale: str = DEFAULT_LOCALE) -> str:
    if not options:
        return t("prefer.no_options", locale)
    lines = [f"<b>{t('prefer.options_title', locale)}</b>"]
    lines += [f"{code('--' + name)} → {code(value, 200)}" for name, value in options.items()]
    return "\n".join(lines)


def details_text(view: JobView, locale: str = DEFAULT_LOCALE) -> str:
    params = json.dumps(dict(view.params), ensure_ascii=False, sort_keys=True, default=str)
    parent = f"\n<b>{t('details.parent', locale)}</b>: {code(view.parent_id)}" if view.parent_id else ""
    return (
        f"<b>{t('details.job', locale)}</b> {code(view.job_id)} · {text(status_name(view.status, locale), 12)}"
        f"{parent}\n"
        f"<b>{t('details.prompt', locale)}</b>: {text(view.display or view.prompt, 1200)}\n"
        f"<b>{t('details.seed', locale)}</b>: {code(str(view.seed))} · "
        f"<b>{t('details.model', locale)}</b>: {text(view.model, 64)} · "
        f"<b>{t('details.mode', locale)}</b>: {text(view.mode, 8)} · "
        f"<b>{t('details.gpu', locale)}</b>: {view.gpu_seconds:.1f} s\n"
        f"<b>{t('details.parameters', locale)}</b>: {code(params, 2500)}"
    )
