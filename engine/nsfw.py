"""The worker's image classifier: a score (0–1) for "not safe for work" on every input and output image.

``IMPASTO_NSFW_MODEL`` picks it: ``none`` (no classifier), ``tiny`` (the built-in test model), a transformers
image-classification model by Hugging Face id or folder (NSFW classifiers are published as ViT fine-tunes), or
diffusers' Stable Diffusion safety checker (``safety-checker``, or ``safety-checker:ID_OR_FOLDER`` for another copy of
it). An image's score is the summed probability of the model's NSFW-like labels; it is flagged when the score is at
least ``IMPASTO_NSFW_THRESHOLD`` (so 0 flags everything and 1 only certainties).

The safety checker answers yes or no by a margin: the largest (cosine similarity − the concept's threshold) over its
17 concepts, as diffusers computes it. Its score here is that margin through a logistic of scale 0.02 (margins are
a few hundredths), so 0.5 is the checker's own line and the threshold moves it either way. We compute the margin from
the checker's weights ourselves because its ``forward`` returns only the yes/no and blacks out the images.

The tiny model is the real ``ViTForImageClassification`` at a tiny config with seeded random weights, saved once
with ``save_pretrained`` and loaded back through the same ``AutoModelForImageClassification.from_pretrained`` path
as a real model, as ``engine/tiny.py`` does for the diffusion models. Its scores mean nothing; tests steer the
verdict with the threshold.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# torch and transformers are imported where a model is built or run, not here: the worker reads ``NsfwConfig`` in
# ``main()`` even when it renders without torch (``impasto worker --renderer noop``).

TINY = "tiny"
NONE = "none"
SAFETY_CHECKER = "safety-checker"
SAFETY_CHECKER_SOURCE = "CompVis/stable-diffusion-safety-checker"  # the copy Stable Diffusion pipelines load
SAFETY_MARGIN_SCALE = 0.02
# Label names (lowercased, substring) that count towards the score; a model's labels are read from its config.
NSFW_LABELS = ("nsfw", "porn", "hentai", "sexy", "explicit", "unsafe", "nude", "sexual", "gore")
_SEED = 20261201
_MARKER = "impasto-tiny.json"
_VERSION = 1


class NsfwConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="IMPASTO_NSFW_", env_file=".env", extra="ignore")

    model: str = NONE  # none | tiny | a Hugging Face id | a folder
    threshold: float = Field(default=0.5, ge=0.0, le=1.0)


class ClassifierError(RuntimeError):
    """The configured classifier cannot be loaded or has no NSFW-like label; the message says which."""


@dataclass(frozen=True)
class ImageVerdict:
    score: float
    flagged: bool


class NsfwClassifier:
    def __init__(self, model: Any, processor: Any, nsfw_indices: Sequence[int], device: str) -> None:
        self._model = model
        self._processor = processor
        self._nsfw = list(nsfw_indices)
        self._device = device

    def scores(self, images: Sequence[Image.Image]) -> list[float]:
        import torch

        if not images:
            return []
        with torch.inference_mode():
            batch = self._processor(images=[i.convert("RGB") for i in images], return_tensors="pt").to(self._device)
            probabilities = self._model(**batch).logits.float().softmax(dim=-1)
            return [min(1.0, float(p)) for p in probabilities[:, self._nsfw].sum(dim=-1).cpu()]

    def check(self, images: Sequence[Image.Image], threshold: float) -> list[ImageVerdict]:
        return [ImageVerdict(score=s, flagged=s >= threshold) for s in self.scores(images)]


class SafetyChecker:
    """diffusers' ``StableDiffusionSafetyChecker``, scored by its margin (see the module's docstring)."""

    def __init__(self, model: Any, processor: Any, device: str) -> None:
        self._model = model
        self._processor = processor
        self._device = device

    def scores(self, images: Sequence[Image.Image]) -> list[float]:
        import torch

        if not images:
            return []
        model = self._model
        with torch.inference_mode():
            batch = self._processor(images=[i.convert("RGB") for i in images], return_tensors="pt")
            pixels = batch["pixel_values"].to(self._device, dtype=model.dtype)
            embeds = torch.nn.functional.normalize(model.visual_projection(model.vision_model(pixels)[1]).float())
            special = embeds @ torch.nn.functional.normalize(model.special_care_embeds.float()).t()
            special_margin = special - model.special_care_embeds_weights.float()
            # diffusers: an image near a "special care" concept gets 0.01 added to every concept's margin
            adjustment = (special_margin > 0).any(dim=1, keepdim=True).float() * 0.01
            concepts = embeds @ torch.nn.functional.normalize(model.concept_embeds.float()).t()
            margin = (concepts - model.concept_embeds_weights.float() + adjustment).max(dim=1).values
            return [float(s) for s in torch.sigmoid(margin / SAFETY_MARGIN_SCALE).cpu()]

    def check(self, images: Sequence[Image.Image], threshold: float) -> list[ImageVerdict]:
        return [ImageVerdict(score=s, flagged=s >= threshold) for s in self.scores(images)]


def load_safety_checker(source: str, *, device: str = "cpu") -> SafetyChecker:
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
    from transformers import CLIPImageProcessor

    try:
        model = StableDiffusionSafetyChecker.from_pretrained(source)
        model = model.to(device).eval()  # type: ignore[arg-type]  # transformers wraps .to() in a decorator mistyped for methods
        processor = CLIPImageProcessor.from_pretrained(source)
    except (OSError, ValueError) as exc:
        raise ClassifierError(f"the safety checker {source!r} cannot be loaded: {exc}") from exc
    return SafetyChecker(model, processor, device)


def ensure_tiny_classifier(cache_dir: Path) -> Path:
    """The folder of the tiny classifier, built and saved on first use (well under a second on a CPU)."""
    import torch
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    folder = cache_dir / "tiny-nsfw"
    marker = folder / _MARKER
    if marker.exists() and json.loads(marker.read_text()).get("version") == _VERSION:
        return folder
    torch.manual_seed(_SEED)
    config = ViTConfig(
        image_size=32,
        patch_size=8,
        num_channels=3,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        id2label={0: "normal", 1: "nsfw"},
        label2id={"normal": 0, "nsfw": 1},
    )
    model = ViTForImageClassification(config).eval()  # type: ignore[no-untyped-call]
    processor = ViTImageProcessor(size={"height": 32, "width": 32})
    tmp = cache_dir / ".tiny-nsfw.building"
    if tmp.exists():
        shutil.rmtree(tmp)
    model.save_pretrained(tmp, safe_serialization=True)
    processor.save_pretrained(tmp)
    (tmp / _MARKER).write_text(json.dumps({"version": _VERSION, "seed": _SEED}))
    if folder.exists():
        shutil.rmtree(folder)
    tmp.rename(folder)
    return folder


def load_classifier(name: str, cache_dir: Path, *, device: str | None = None) -> NsfwClassifier | SafetyChecker | None:
    """The classifier ``IMPASTO_NSFW_MODEL`` names, ready on ``device``; ``None`` for ``none``.

    Without a ``device`` it goes where the renders go (the GPU when there is one): it then runs on their thread,
    between them, and the bots never need to import torch to choose.
    """
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    if name == NONE:
        return None
    if device is None:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    if name == SAFETY_CHECKER or name.startswith(SAFETY_CHECKER + ":"):
        return load_safety_checker(name.partition(":")[2] or SAFETY_CHECKER_SOURCE, device=device)
    source = str(ensure_tiny_classifier(cache_dir)) if name == TINY else name
    try:
        model = AutoModelForImageClassification.from_pretrained(source).to(device).eval()
        processor = AutoImageProcessor.from_pretrained(source)  # type: ignore[no-untyped-call]
    except (OSError, ValueError) as exc:
        raise ClassifierError(f"IMPASTO_NSFW_MODEL={name!r} cannot be loaded: {exc}") from exc
    labels: dict[int, str] = {int(k): str(v) for k, v in model.config.id2label.items()}
    nsfw = [i for i, label in labels.items() if any(word in label.lower() for word in NSFW_LABELS)]
    if not nsfw:
        raise ClassifierError(
            f"IMPASTO_NSFW_MODEL={name!r} has no NSFW-like label (its labels: {', '.join(labels.values())}); "
            f"expected one containing {', '.join(NSFW_LABELS)}"
        )
    return NsfwClassifier(model, processor, nsfw, device)
