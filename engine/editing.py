"""Prompt editing during sampling: the conditioning a render starts with, and the swaps between steps.

``prompt_schedule`` (torch-free) says which text each ``::`` segment reads at each step; here the segments are
combined into one schedule for the whole prompt, each distinct text is encoded once (all padded to one length), and
the step callback replaces the pipeline's ``prompt_embeds`` (and SDXL's pooled ``add_text_embeds``) when a step
boundary is crossed. diffusers reads both back from the callback's return value before the next step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from impasto.engine.conditioning import Conditioning, PromptEncoder, Segments
from impasto.engine.prompt_schedule import has_schedule, prompt_schedule


def steps_to_run(task: str, steps: int, strength: float | None, sigmas: list[float] | None) -> int:
    """How many denoising steps the pipeline will run (img2img runs the last ``int(steps × strength)``)."""
    if sigmas is not None:
        return len(sigmas) - 1
    if task == "txt2img" or strength is None:
        return steps
    return max(1, min(steps, int(steps * strength)))


def segment_schedule(segments: Segments, steps: int) -> list[tuple[int, Segments]]:
    """``(last_step, Segments)`` for the whole prompt: one entry when nothing in it is scheduled."""
    texts = [t for t, _ in (*segments.positive, *segments.negative)]
    if not any(has_schedule(t) for t in texts):
        return [(steps, segments)]
    per_text = [prompt_schedule(t, steps) for t in texts]
    ends = sorted({end for schedule in per_text for end, _ in schedule})
    plan: list[tuple[int, Segments]] = []
    for end in ends:
        at = [next(text for last, text in schedule if last >= end) for schedule in per_text]
        count = len(segments.positive)
        variant = Segments(
            tuple((t, w) for t, (_, w) in zip(at[:count], segments.positive, strict=True)),
            tuple((t, w) for t, (_, w) in zip(at[count:], segments.negative, strict=True)),
        )
        if plan and plan[-1][1] == variant:
            plan[-1] = (end, variant)
        else:
            plan.append((end, variant))
    return plan


@dataclass
class EmbeddingSwitch:
    """The conditionings of a schedule and the step boundaries at which each takes over."""

    ends: list[int]  # last step (1-based) of each conditioning
    conditionings: list[Conditioning]
    family: str
    batch: int

    @property
    def first(self) -> Conditioning:
        return self.conditionings[0]

    def after_step(self, pipe: Any, step_index: int, kwargs: dict[str, Any]) -> dict[str, Any]:
        """Called after 0-based ``step_index``: when the next step (1-based ``step_index + 2``) reads another text,
        return the new embeddings in the layout the pipeline holds them (negatives first under guidance, each
        repeated for the batch)."""
        if len(self.conditionings) == 1:
            return {}
        following = step_index + 2
        index = next((i for i, end in enumerate(self.ends) if end >= following), len(self.ends) - 1)
        previous = next((i for i, end in enumerate(self.ends) if end >= following - 1), len(self.ends) - 1)
        if index == previous:
            return {}
        chosen = self.conditionings[index].kwargs
        guided = bool(getattr(pipe, "do_classifier_free_guidance", True))
        device, dtype = pipe.unet.device, pipe.unet.dtype
        out = {"prompt_embeds": self._layout(chosen, "prompt_embeds", guided).to(device, dtype)}
        if self.family == "sdxl":
            out["add_text_embeds"] = self._layout(chosen, "pooled_prompt_embeds", guided).to(device, dtype)
        return out

    def _layout(self, kwargs: dict[str, torch.Tensor], key: str, guided: bool) -> torch.Tensor:
        positive = kwargs[key].repeat_interleave(self.batch, dim=0)
        if not guided:
            return positive
        negative = kwargs["negative_" + key].repeat_interleave(self.batch, dim=0)
        return torch.cat([negative, positive])


def embedding_switch(
    encoder: PromptEncoder, segments: Segments, steps: int, *, family: str, batch: int
) -> EmbeddingSwitch:
    plan = segment_schedule(segments, steps)
    conditionings = encoder.encode_many([variant for _, variant in plan])
    return EmbeddingSwitch([end for end, _ in plan], conditionings, family, batch)
