"""Texts built from the job service's views: /info, /settings, /history, /prefer and a job's details."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from impasto.bots.service.views import InfoView, JobView, SettingsView
from impasto.bots.telegram.escaping import code, text
from impasto.bots.telegram.keyboards import STYLIZE_PRESETS


def info_text(info: InfoView) -> str:
    queued = info.queued_jobs
    running = ", ".join(code(j) for j in info.running_jobs) or "None"
    return "\n".join(
        [
            "<b>Your info</b>",
            f"<b>User ID</b>: {code(info.user_id)}",
            f"<b>Subscription</b>: {text(info.plan)} (renews {info.renews_on.isoformat()})",
            f"<b>Job Mode</b>: {text(info.mode.capitalize())}",
            f"<b>Visibility Mode</b>: {text(info.visibility.capitalize())}",
            f"<b>Remix</b>: {'On' if info.remix else 'Off'}",
            f"<b>Fast Time Remaining</b>: {info.fast_remaining_hours:.2f}/{info.fast_limit_hours:.1f} hours "
            f"({info.fast_remaining_percent:.2f}%)",
            f"<b>Lifetime Usage</b>: {info.lifetime_images} images ({info.lifetime_hours:.2f} hours)",
            f"<b>Relaxed Usage</b>: {info.relaxed_images} images ({info.relaxed_hours:.2f} hours)",
            f"<b>Queued Jobs (fast)</b>: {queued.get('fast', 0)}",
            f"<b>Queued Jobs (relax)</b>: {queued.get('relax', 0)}",
            f"<b>Queued Jobs (turbo)</b>: {queued.get('turbo', 0)}",
            f"<b>Running Jobs</b>: {running}",
        ]
    )


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
    return state


def settings_text(view: SettingsView) -> str:
    current = view.settings_text or "(none)"
    suffix = view.suffix or "(none)"
    return (
        "<b>Settings</b> — they apply to your next jobs; parameters in a prompt override them.\n"
        f"Current suffix: {code(current, 300)}\n/prefer suffix: {code(suffix, 300)}"
    )


def history_text(views: Sequence[JobView]) -> str:
    if not views:
        return "No jobs yet. Start with <code>/imagine a lighthouse at dusk</code>."
    lines = ["<b>Your recent jobs</b> (<code>/show JOB_ID</code> posts one again)"]
    for view in views:
        lines.append(f"{code(view.job_id)} {text(view.status, 12)} · {text(view.display or view.prompt, 80)}")
    return "\n".join(lines)


def options_text(options: Mapping[str, str]) -> str:
    if not options:
        return "No custom options. Make one: <code>/prefer option set mine --s 250 --style raw</code>"
    lines = ["<b>Your options</b>"]
    lines += [f"{code('--' + name)} → {code(value, 200)}" for name, value in options.items()]
    return "\n".join(lines)


def details_text(view: JobView) -> str:
    params = json.dumps(dict(view.params), ensure_ascii=False, sort_keys=True, default=str)
    parent = f"\n<b>Parent</b>: {code(view.parent_id)}" if view.parent_id else ""
    return (
        f"<b>Job</b> {code(view.job_id)} · {text(view.status, 12)}{parent}\n"
        f"<b>Prompt</b>: {text(view.display or view.prompt, 1200)}\n"
        f"<b>Seed</b>: {code(str(view.seed))} · <b>Model</b>: {text(view.model, 64)} · "
        f"<b>Mode</b>: {text(view.mode, 8)} · <b>GPU</b>: {view.gpu_seconds:.1f} s\n"
        f"<b>Parameters</b>: {code(params, 2500)}"
    )
