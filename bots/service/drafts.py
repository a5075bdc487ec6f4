"""From a parsed prompt or a pressed button to the job rows about to be admitted (``Draft``), priced.

A draft is what admission checks, charges and writes: the action, the stored parameters (``Job.to_json()``), the
seed, the lineage (parent, image index, input images) and the estimated GPU time before the mode's multiplier.
"""

from __future__ import annotations

import dataclasses
import random
import re
from dataclasses import dataclass, field
from typing import Any

from impasto.bots.language.job import Job as ParsedJob
from impasto.bots.language.parser import parse_remix
from impasto.bots.service.context import Context
from impasto.bots.service.errors import InvalidRequest
from impasto.bots.service.jobjson import job_from_json
from impasto.bots.service.views import ImageView, JobView
from impasto.engine.registry import Registry, RegistryError
from impasto.queue.actions import Action
from impasto.storage.admission import DoneImage
from impasto.storage.plans import Plans

MAX_SEED = 2**32 - 1
DEFAULT_STEPS = 30
GRID_IMAGES = 4
#: GPU-seconds held for a /describe (one CLIP pass over an image; settled from what the worker measured).
DESCRIBE_GPU_SECONDS = 2.0


@dataclass
class Draft:
    """A job row about to be written."""

    action: Action
    job: ParsedJob  # the command language's reading of it: what the capability check looks at
    prompt: str
    params: dict[str, Any]
    seed: int
    estimate_gpu_seconds: float  # before the mode's multiplier
    parent_id: str | None = None
    image_index: int | None = None
    input_image_keys: list[str] = field(default_factory=list)
    # A free pick (U1–U4): the job is born done with these images and never queued.
    done_images: list[DoneImage] = field(default_factory=list)

    @property
    def mode(self) -> str:
        return str(self.params.get("mode", self.job.mode))

    @property
    def renders(self) -> bool:
        return not self.done_images


class Drafter:
    """Builds drafts: draws seeds, prices renders from the model's steps and the plans' cost table."""

    def __init__(self, registry: Registry, plans: Plans, rng: random.Random | None = None) -> None:
        self.registry = registry
        self.plans = plans
        self._rng = rng or random.SystemRandom()

    def new_seed(self) -> int:
        return self._rng.randint(0, MAX_SEED)

    def estimate(
        self, model: str, width: int, height: int, quality: float, *, images: int, draft: bool = False
    ) -> float:
        """GPU-seconds held for a render: the steps the engine will run (``--draft`` on a model with a few-step
        variant runs that variant's steps, and costs what it runs)."""
        try:
            steps = self.registry.planned_steps(model, quality, draft)
        except RegistryError:
            steps = max(1, round(DEFAULT_STEPS * quality))
        return self.plans.costs.estimate_gpu_seconds(width_px=width, height_px=height, steps=steps, images=images)

    def from_parsed(self, job: ParsedJob, *, action: Action, prompt: str) -> Draft:
        """/imagine (one per permutation × repeat) and /blend."""
        seed = job.seed if job.seed is not None else self.new_seed()
        params = job.to_json()
        params["seed"] = seed
        return Draft(
            action=action,
            job=job,
            prompt=prompt,
            params=params,
            seed=seed,
            estimate_gpu_seconds=self.estimate(
                job.model, job.width, job.height, job.quality, images=GRID_IMAGES, draft=job.draft
            ),
        )

    def child(self, ctx: Context, parent: JobView, action: Action, index: int | None, remix_text: str | None) -> Draft:
        """A button's job: the parent's prompt (or the Remix edit of it), the presser's current mode."""
        original = job_from_json(parent.params)
        mode: str
        if remix_text is not None:
            edited = parse_remix(original, remix_text, registry=self.registry, preferences=ctx.preferences)
            mode = edited.mode
        else:
            # A button uses the presser's current mode (as Midjourney does), not the one the parent ran in.
            edited, mode = original, ctx.prefs.mode
        row = action.row
        if edited.stop != 100 and edited.stop == original.stop and action is not Action.REROLL:
            # --stop belonged to the text-to-image render that made the parent; a button starts from its finished
            # image (as Midjourney's do), so the child is stored as what it paints: the full schedule.
            edited = _with_stop(edited, 100)
        seed = self.new_seed() if action.new_seed else (edited.seed if edited.seed is not None else parent.seed)
        params = edited.to_json()
        params["seed"] = seed
        params["mode"] = mode
        if row.strength is not None or row.needs_mask:
            params["variation"] = ctx.prefs.variation  # high/low variation mode, for V1–V4 and Vary
        width, height, images = edited.width, edited.height, GRID_IMAGES
        if row.output == "single":
            width, height, images = width * row.scale, height * row.scale, 1
        input_key, index = input_image(parent, action, index)
        return Draft(
            action=action,
            job=edited,
            prompt=remix_text if remix_text is not None else parent.prompt,
            params=params,
            seed=seed,
            estimate_gpu_seconds=self.estimate(
                edited.model, width, height, edited.quality, images=images, draft=edited.draft
            ),
            parent_id=parent.job_id,
            image_index=index,
            input_image_keys=[input_key] if input_key else [],
        )

    def describe(self, ctx: Context, *, display: str, image_key: str, offset: int, parent_id: str | None) -> Draft:
        """/describe (and its 🔄): one job for the worker's captioner, on the model the user paints with."""
        model = ctx.prefs.model if ctx.prefs.model and ctx.prefs.model in self.registry.models else None
        model = model or self.registry.default
        mode: Any = ctx.prefs.mode if ctx.prefs.mode in ("fast", "relax", "turbo") else "fast"
        visibility: Any = ctx.prefs.visibility if ctx.prefs.visibility in ("public", "stealth") else "public"
        job = ParsedJob(prompts=(), model=model, mode=mode, visibility=visibility, display=display)
        params: dict[str, Any] = {
            "model": model,
            "mode": mode,
            "visibility": visibility,
            "display": display,
            "offset": offset,
            "image": image_key,  # 🔄 describes the same picture again
        }
        return Draft(
            action=Action.DESCRIBE,
            job=job,
            prompt=display,
            params=params,
            seed=0,
            estimate_gpu_seconds=DESCRIBE_GPU_SECONDS,
            parent_id=parent_id,
            input_image_keys=[image_key],
        )

    def pick(self, parent: JobView, index: int, image: ImageView) -> Draft:
        """U1–U4: a free, finished job holding the chosen grid image."""
        params = dict(parent.params)
        return Draft(
            action=Action.UPSCALE,
            job=job_from_json(parent.params),
            prompt=parent.prompt,
            params=params,
            seed=parent.seed,
            estimate_gpu_seconds=0.0,
            parent_id=parent.job_id,
            image_index=index,
            input_image_keys=[image.key],
            done_images=[DoneImage(1, image.key, image.width_px, image.height_px)],
        )


def input_image(parent: JobView, action: Action, index: int | None) -> tuple[str | None, int | None]:
    """The parent image an action starts from, and the index it is stored under."""
    singles = sorted(image.index for image in parent.images if image.index >= 1)
    if action is Action.REROLL:
        return None, None
    if action.needs_index or (index is not None and parent.is_grid):
        if index is None or parent.image(index) is None or index < 1:
            allowed = f"{singles[0]}–{singles[-1]}" if singles else "none"
            raise InvalidRequest(f"image {index} does not exist in job {parent.job_id}; images: {allowed}")
        image = parent.image(index)
        assert image is not None
        return image.key, index
    single = parent.image(1) if len(singles) == 1 or not parent.is_grid else None
    if single is None:
        raise InvalidRequest(f"job {parent.job_id} is a grid; pick an image first (U1–U4)")
    return single.key, None


def _with_stop(job: ParsedJob, stop: int) -> ParsedJob:
    display = re.sub(r"\s--stop \d+", "", job.display) if stop == 100 else job.display
    return dataclasses.replace(job, stop=stop, display=display)
