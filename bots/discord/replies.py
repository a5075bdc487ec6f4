"""The private one-message answers of the text commands (/info, /history, /prefer…, /server), from the core's views.

Everything the user typed is escaped here; the result goes out with ``texts.NO_MENTIONS``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from impasto.bots.discord import texts
from impasto.bots.service.views import GuildView, InfoView, JobView

MODE_REPLIES = {
    "fast": "Fast mode on: your jobs use fast GPU time.",
    "relax": "Relax mode on: your jobs wait for idle GPUs and use no fast time.",
    "turbo": "Turbo mode on: your jobs run fastest, at twice the fast time.",
}
VISIBILITY_REPLIES = {
    "public": "Public mode on: your new jobs show in the gallery.",
    "stealth": "Stealth mode on: your new jobs stay out of the gallery.",
}


def info(view: InfoView) -> str:
    running = ", ".join(view.running_jobs) or "None"
    lines = [
        f"**User ID**: {view.user_id}",
        f"**Subscription**: {texts.escape(view.plan)} (renews next on {view.renews_on.isoformat()})",
        f"**Job Mode**: {view.mode.title()}",
        f"**Visibility Mode**: {view.visibility.title()}",
        f"**Remix**: {'On' if view.remix else 'Off'}",
        f"**Fast Time Remaining**: {view.fast_remaining_hours:.2f}/{view.fast_limit_hours:.1f} hours "
        f"({view.fast_remaining_percent:.2f}%)",
        f"**Lifetime Usage**: {view.lifetime_images} images ({view.lifetime_hours:.2f} hours)",
        f"**Relaxed Usage**: {view.relaxed_images} images ({view.relaxed_hours:.2f} hours)",
    ]
    lines += [f"**Queued Jobs ({lane})**: {count}" for lane, count in view.queued_jobs.items()]
    lines.append(f"**Running Jobs**: {running}")
    return "\n".join(lines)


def details(view: JobView) -> str:
    params = ", ".join(
        f"{key}={value}" for key, value in sorted(view.params.items()) if value not in (None, [], {}, "", False)
    )
    return "\n".join(
        [
            f"**Job ID**: {view.job_id}",
            f"**Seed**: {view.seed}",
            f"**Prompt**: {texts.escape(view.display)}",
            f"**Model**: {view.model} · **Mode**: {view.mode} · **Status**: {view.status}",
            f"**Parameters**: {texts.escape(params)}"[: texts.MAX_MESSAGE // 2],
        ]
    )


MESSAGE_CHARS = 2000  # Discord's limit for a message's content


def history(views: Sequence[JobView], gallery_url: str | None = None) -> str:
    """The recent jobs, one a line, under a link to the user's gallery when the web front door is there (the lines
    that would pass Discord's 2,000 characters are left out: the gallery has them all)."""
    lines = [gallery_line(gallery_url)] if gallery_url else []
    if not views:
        lines.append("No jobs yet: try `/imagine`.")
    for v in views:
        line = f"`{v.job_id}` **{texts.shown_prompt(v.display)[:150]}** ({v.status})"
        if sum(len(x) + 1 for x in lines) + len(line) > MESSAGE_CHARS:
            break
        lines.append(line)
    return "\n".join(lines)


def gallery_line(url: str) -> str:
    return f"🖼️ [Your gallery](<{url}>): every job you made, stealth ones too. The link is yours alone, for an hour."


def public_gallery_line(url: str) -> str:
    return f"🖼️ [This server's public gallery](<{url}>): the jobs made public here (never stealth ones)."


def suffix(value: str) -> str:
    return f"Suffix set to `{texts.code(value)}`" if value else "Suffix cleared."


def remix(on: bool) -> str:
    return "Remix mode turned on." if on else "Remix mode turned off."


def option_set(name: str, options: Mapping[str, str]) -> str:
    bare = name.removeprefix("--").lower()
    if bare in options:
        return f"Custom option `--{texts.code(bare)}` set to `{texts.code(options[bare])}`"
    return f"Custom option `--{texts.code(bare)}` deleted."


def option_list(options: Mapping[str, str]) -> str:
    if not options:
        return "No custom options yet: `/prefer option set name value`."
    return "\n".join(f"`--{texts.code(k)}`: `{texts.code(v)}`" for k, v in options.items())


def server(guild: GuildView, plans: Sequence[str]) -> str:
    channels = ", ".join(f"<#{int(c)}>" for c in guild.allowed_channels) or "every channel"
    roles = ", ".join(f"<@&{int(r)}> → {texts.escape(p)}" for r, p in guild.role_plans.items()) or "none"
    return f"**Channels**: {channels}\n**Role plans**: {roles}\n**Plans**: {', '.join(sorted(plans))}"
