"""The core's views as labelled rows in the user's language, for both chats: /info and a job's details.

Each adapter sets the rows in its own markup (Discord's ``**label**: value``, Telegram's ``<b>label</b>: value``) and
escapes the values; the words come from here, so both platforms say the same thing in every language.
"""

from __future__ import annotations

from impasto.bots.i18n.catalog import t
from impasto.bots.service.views import InfoView

LANES = ("fast", "relax", "turbo")


def mode_name(mode: str, locale: str) -> str:
    """A job mode as /info shows it ("Turbo", "极速")."""
    return t(f"info.mode_{mode}", locale) if mode in LANES else mode


def status_name(status: str, locale: str) -> str:
    """A job's status as history and details show it ("done", "已完成")."""
    return t(f"term.{status}", locale) if status in ("queued", "running", "failed", "cancelled", "done") else status


def info_rows(view: InfoView, locale: str, *, running: str) -> list[tuple[str, str]]:
    """``/info`` as (label, value) rows; ``running`` is the running jobs' ids, already set in the adapter's markup."""
    rows = [
        (t("info.user_id", locale), view.user_id),
        (t("info.plan", locale), t("info.plan_value", locale, plan=view.plan, date=view.renews_on.isoformat())),
        (t("info.job_mode", locale), mode_name(view.mode, locale)),
        (t("info.visibility", locale), t(f"info.{'stealth' if view.visibility == 'stealth' else 'public'}", locale)),
        (t("info.remix", locale), t("info.on" if view.remix else "info.off", locale)),
        (
            t("info.fast_left", locale),
            t(
                "info.fast_left_value",
                locale,
                left=f"{view.fast_remaining_hours:.2f}",
                limit=f"{view.fast_limit_hours:.1f}",
                percent=f"{view.fast_remaining_percent:.2f}",
            ),
        ),
        (
            t("info.lifetime", locale),
            t("info.usage_value", locale, images=view.lifetime_images, hours=f"{view.lifetime_hours:.2f}"),
        ),
        (
            t("info.relaxed", locale),
            t("info.usage_value", locale, images=view.relaxed_images, hours=f"{view.relaxed_hours:.2f}"),
        ),
    ]
    for lane in LANES:
        rows.append((t("info.queued_lane", locale, lane=mode_name(lane, locale)), str(view.queued_jobs.get(lane, 0))))
    rows.append((t("info.running", locale), running or t("info.none", locale)))
    return rows
