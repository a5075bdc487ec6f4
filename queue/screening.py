"""The worker's moderation: the image classifier on every input and output, and the prompt policy on a translation.

The bots check a prompt before anything is charged; what only the worker sees is checked here, with the same
server's rules read from SQL:

- **input images** (attachments, image-prompt links, blend sources — not the job's own parent pictures, which were
  checked as outputs) are classified before rendering; a flagged one ends the job with one line naming the
  category, refunded and audited (``FLAGGED``);
- **outputs** are classified before the completion event; each image's score and verdict are stored with it, and
  the event says which were flagged (delivery decides what that means in the place it was asked);
- **a translated prompt** (``engine/translate.py``) is checked by the prompt policy as its original was at
  admission, before anything is painted; a refusal ends the job as a refused prompt is answered, refunded, audited.

The classifier is ``IMPASTO_NSFW_MODEL`` (``engine/nsfw.py``), loaded once on the GPU thread; an image is flagged
when its score ≥ ``IMPASTO_NSFW_THRESHOLD``. This module never imports torch: the classifier arrives built.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from PIL import Image
from sqlalchemy.ext.asyncio import AsyncSession

from impasto.engine.errors import EngineError
from impasto.engine.spec import Blend
from impasto.queue.moderation.policy import Policy, ServerRules
from impasto.queue.moderation.verdict import Verdict, check_texts
from impasto.queue.specs import RenderWork
from impasto.storage import moderation as mod
from impasto.storage.lifecycle import ClaimedJob
from impasto.storage.models import FLAGGED, REFUSED, Job

#: What a flagged image is called in the user's line (the classifier scores one thing: not safe for work).
IMAGE_CATEGORY = "sexual or explicit content"
#: Decoding an input for the classifier: as large as any picture the bots accept (they cap files first).
MAX_INPUT_PIXELS = 8192 * 8192


class Classifier(Protocol):
    """``engine.nsfw.NsfwClassifier``: a score in 0–1 per image (summed probability of its NSFW-like labels)."""

    def scores(self, images: Sequence[Image.Image]) -> list[float]: ...


@dataclass(frozen=True)
class ImageCheck:
    """The loaded classifier and the operator's threshold (an image is flagged when its score ≥ threshold)."""

    classifier: Classifier
    threshold: float

    def verdicts(self, pictures: Sequence[bytes]) -> list[tuple[float, bool]]:
        """(score, flagged) per picture, in order. Runs on the GPU thread: the classifier shares the device."""
        decoded = [_decode(p) for p in pictures]
        return [(s, s >= self.threshold) for s in self.classifier.scores(decoded)]


def _decode(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as image:
        if image.width * image.height > MAX_INPUT_PIXELS:
            raise EngineError(f"an input image of {image.width}×{image.height} px is too large to check")
        return image.convert("RGB")


def user_inputs(claimed: ClaimedJob, work: RenderWork) -> list[bytes]:
    """The pictures a user brought to this job: image-prompt links, --sref style references, attachments, blend
    sources.

    The job's parent pictures are left out (they were checked as outputs, and a flagged one may have been delivered
    in an NSFW channel: its buttons must keep working there), and so is an inpainting mask (black and white).
    """
    inputs = list(work.spec.image_prompts) + list(work.spec.style_references)
    if isinstance(work.action, Blend):
        return inputs + list(work.action.images)  # blend sources are always the user's
    first = claimed.input_image_keys[0] if claimed.input_image_keys else None
    source = getattr(work.action, "image", None)  # Vary, Inpaint, Upscale, Outpaint: the picture it starts from
    if first is not None and first not in claimed.parent_image_keys.values() and isinstance(source, bytes):
        inputs.append(source)
    return inputs


def input_refusal(flagged: Sequence[int], count: int) -> str:
    """The user's one line: which input image, and the category; nothing was charged."""
    which = f"image {flagged[0] + 1}" if count > 1 else "the image"
    return f"this job was refused: {which} you gave was flagged as {IMAGE_CATEGORY}; nothing was charged"


class TranslationRefused(EngineError):
    """Raised by the worker's screen (``Translation.screen``) when the policy refuses a prompt's English."""

    def __init__(self, verdict: Verdict, english: str) -> None:
        reason = verdict.reason or "this prompt was refused"
        super().__init__(f"{reason} (in its English translation); nothing was charged")
        self.verdict = verdict
        self.english = english


@dataclass(frozen=True)
class Place:
    """Who asked a job, where, and the server's moderation there: what the audit rows and the policy need."""

    user_id: int
    guild_id: int | None
    channel_id: str | None
    nsfw: bool  # Discord's channel flag at asking time, or the chat's "NSFW allowed" setting
    stored: mod.ServerModeration


async def place_of(session: AsyncSession, job_id: str) -> Place | None:
    job = await session.get(Job, job_id)
    if job is None:
        return None
    stored = await mod.server_moderation(session, job.guild_id)
    return Place(job.user_id, job.guild_id, job.channel_id, job.nsfw_channel or stored.nsfw_chat, stored)


def translation_screen(policy: Policy, place: Place) -> Callable[[str], None]:
    """The engine's ``Translation.screen`` for one job: the policy with the server's rules, on the English."""
    rules: ServerRules = policy.rules_for(place.stored)

    def screen(english: str) -> None:
        verdict = check_texts(policy, rules, [english], nsfw_channel=place.nsfw)
        if not verdict.allowed:
            raise TranslationRefused(verdict, english)

    return screen


async def audit_refused_translation(
    session: AsyncSession, job_id: str, place: Place, refused: TranslationRefused, prompt: str
) -> None:
    await mod.record(
        session,
        REFUSED,
        user_id=place.user_id,
        guild_id=place.guild_id,
        channel_id=place.channel_id,
        job_id=job_id,
        category=refused.verdict.category,
        rule=refused.verdict.rule,
        matched=refused.verdict.matched,
        prompt=f"{prompt}\n(read as: {refused.english})",
        note="translated prompt",
    )


async def audit_flagged(
    session: AsyncSession, job_id: str, place: Place, what: str, verdicts: Sequence[tuple[float, bool]]
) -> None:
    """One ``FLAGGED`` row for a job's flagged inputs or outputs, with their scores (the evidence is the job's)."""
    scores = ", ".join(f"{what} {i + 1}: {s:.2f}" for i, (s, flagged) in enumerate(verdicts) if flagged)
    await mod.record(
        session,
        FLAGGED,
        user_id=place.user_id,
        guild_id=place.guild_id,
        channel_id=place.channel_id,
        job_id=job_id,
        category=IMAGE_CATEGORY,
        rule="image",
        note=scores,
    )
