"""What goes into the engine and what comes out: frozen, torch-free dataclasses.

The queue worker builds a ``RenderSpec`` (plus one action input for the buttons) from a job, calls the engine on its
single GPU thread, and stores the ``RenderResult``. Everything here is plain data (bytes, ints, strings) so that it
crosses process boundaries without pickle and a bot host can import it without torch.

Images travel as encoded bytes (PNG, JPEG or WebP files as the user sent them, or PNGs the engine wrote); the engine
decodes them itself, with Pillow's decompression-bomb guard.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from PIL import Image

Strength = Literal["subtle", "strong"]
PanDirection = Literal["left", "right", "up", "down"]
Dimensions = Literal["portrait", "square", "landscape"]
Kind = Literal["imagine", "vary", "upscale", "zoom", "pan", "square", "inpaint", "blend"]

#: One ``::`` segment: (text, weight). Negative weights (and ``--no`` items) steer away: they go to the
#: unconditional branch of classifier-free guidance.
Prompt = tuple[str, float]

#: A LoRA by file stem in the operator's LoRA folder, and its weight.
LoraRef = tuple[str, float]


@dataclass(frozen=True)
class RenderSpec:
    """One render, every parameter resolved (the command language's ``Job`` minus chat and queue fields).

    ``seed`` None: the engine draws one and reports it in the result. ``steps``/``guidance`` None: from the model's
    registry entry, scaled by ``quality``/``draft``/``stylize``. Prompt text may hold A1111 emphasis ``(word:1.3)``
    and ``<lora:name:0.8>`` tags; tags are merged with ``loras`` and stripped before encoding.
    """

    model: str
    prompts: tuple[Prompt, ...]
    width: int = 1024
    height: int = 1024
    seed: int | None = None
    chaos: int = 0  # 0–100
    stylize: int = 100  # 0–1000
    quality: float = 1.0  # .25 / .5 / 1 / 2
    stop: int = 100  # 10–100
    tile: bool = False
    style_raw: bool = False
    image_weight: float = 1.0  # 0–3
    weird: int = 0  # only 0 is honoured
    draft: bool = False
    loras: tuple[LoraRef, ...] = ()
    image_prompts: tuple[bytes, ...] = ()
    # --sref: style reference images, and --sw 0–1000 (100 by default), painted through the model's IP-Adapter on
    # its style layers only (engine/references.py).
    style_references: tuple[bytes, ...] = ()
    style_weight: int = 100
    batch_size: int = 4
    steps: int | None = None
    guidance: float | None = None
    # The prompts as the user wrote them, when ``prompts`` is their translation (engine/translate.py).
    original_prompts: tuple[Prompt, ...] | None = None

    @property
    def positive(self) -> tuple[Prompt, ...]:
        return tuple(p for p in self.prompts if p[1] > 0)

    @property
    def negative(self) -> tuple[Prompt, ...]:
        return tuple(p for p in self.prompts if p[1] < 0)


# --- The per-action inputs (buttons under a grid or a single image) -------------------------------------------------


@dataclass(frozen=True)
class Vary:
    """V1–V4, Vary (Subtle/Strong): img2img from one image, a new batch. Reroll is ``imagine`` with a new seed."""

    image: bytes
    strength: Strength = "subtle"


@dataclass(frozen=True)
class Upscale:
    """Upscale (Subtle/Creative) by ``scale`` (2 or 4); one image out.

    With a super-resolution model in the registry: Subtle is the SR model alone, Creative the SR model then a
    tiled img2img refine with the prompt. Without one: a Lanczos resize, then img2img at a low / higher strength.
    """

    image: bytes
    creative: bool = False
    scale: int = 2


@dataclass(frozen=True)
class Outpaint:
    """Zoom Out (``zoom`` 1–2), Pan (``pan``) or Make Square (``square``): exactly one of the three."""

    image: bytes
    zoom: float | None = None
    pan: PanDirection | None = None
    square: bool = False

    @property
    def kind(self) -> Kind:
        return "zoom" if self.zoom is not None else "pan" if self.pan is not None else "square"


@dataclass(frozen=True)
class Inpaint:
    """Vary (Region): repaint where the mask is white (mask: any image; luminance > 127 means repaint)."""

    image: bytes
    mask: bytes


@dataclass(frozen=True)
class Blend:
    """/blend: 2–5 images, no text needed; ``dimensions`` sets the output shape (2:3, 1:1, 3:2)."""

    images: tuple[bytes, ...]
    dimensions: Dimensions = "square"


ActionInput = Vary | Upscale | Outpaint | Inpaint | Blend


# --- Out -------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RenderResult:
    """What a render produced. ``images`` are PNGs carrying their provenance (A1111 ``parameters`` text chunk).

    ``grid`` is the 2×2 composition (1 top-left, 2 top-right, 3 bottom-left, 4 bottom-right) when more than one image
    was painted, else None. ``gpu_seconds`` is the time the device spent on this render (model loading excluded);
    ``elapsed_s`` includes loading.
    """

    kind: Kind
    model: str
    images: tuple[bytes, ...]
    grid: bytes | None
    seed: int
    seeds: tuple[int, ...]
    width: int
    height: int
    steps: int
    guidance: float
    gpu_seconds: float
    elapsed_s: float
    is_tiny: bool
    parameters: tuple[str, ...] = field(default=())  # the provenance text of each image
    read_as: str | None = None  # the prompt in the words the model read, when it was translated
    translate_s: float = 0.0  # seconds spent translating the prompt (not in gpu_seconds: not charged)
    untranslated: tuple[str, ...] = ()  # one line per language left as written (no model nor translator reads it)

    @property
    def paints_noise(self) -> bool:
        """Tiny built-in models have random weights: their pictures are noise, and front doors should say so."""
        return self.is_tiny


@dataclass(frozen=True)
class Progress:
    """One denoising step done. ``preview`` is a cheap latent→RGB picture (the batch as a grid), latent-sized."""

    step: int
    total: int
    preview: Image.Image | None = None

    def preview_png(self) -> bytes | None:
        if self.preview is None:
            return None
        buf = io.BytesIO()
        self.preview.save(buf, format="PNG")
        return buf.getvalue()


#: Called after every denoising step, on the engine's thread. Raise ``impasto.engine.errors.Cancelled`` from it to
#: stop the render between steps (the engine lets it propagate and cleans up).
ProgressFn = Callable[[Progress], None]
