"""What of a parsed job the prompt policy reads (``queue/moderation/verdict.py`` holds the check itself)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from impasto.queue.moderation.policy import Policy, ServerRules
from impasto.queue.moderation.verdict import Verdict, check_texts

if TYPE_CHECKING:
    from impasto.bots.language.job import Job


def job_texts(job: Job) -> list[str]:
    """What of a parsed job is checked: positive prompt segments, image-prompt and --sref links.

    Negative segments (``::-0.5``) and ``--no`` items are left out: they steer the picture away from their words.
    The link text counts because a link can spell a prompt (``…/nude-girl.png``).
    """
    return [p.text for p in job.positive] + list(job.image_prompts) + list(job.style_references)


def check_jobs(policy: Policy, server: ServerRules, jobs: Sequence[Job], *, nsfw_channel: bool) -> Verdict:
    """Every permutation of one request, refused together if any is."""
    return check_texts(policy, server, [t for job in jobs for t in job_texts(job)], nsfw_channel=nsfw_channel)
