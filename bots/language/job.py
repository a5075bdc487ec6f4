"""What the command language hands to the rest of impasto: a validated, fully-defaulted job.

This is the contract between the parser (``impasto.bots.language``) and everything downstream (the job service,
the queue contract, the console renderer). Fields may be added; renaming one is a breaking change for the JSON form
that ``impasto explain --json`` prints and that README documents.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Mode = Literal["fast", "relax", "turbo"]
Visibility = Literal["public", "stealth"]
Style = Literal["raw"]


@dataclass(frozen=True)
class WeightedPrompt:
    """One ``::`` segment. Negative weights (and every ``--no`` item, at -0.5) steer away from the text."""

    text: str
    weight: float = 1.0


@dataclass(frozen=True)
class Lora:
    """A ``<lora:name:weight>`` tag found in the prompt text (the tag stays in ``text`` for the engine as well)."""

    name: str
    weight: float = 1.0


@dataclass(frozen=True)
class Emphasis:
    """An A1111 emphasis span, ``(word:1.3)`` / ``((word))`` / ``[word]``, with its effective multiplier."""

    text: str
    weight: float


@dataclass(frozen=True)
class Job:
    """One render request: a single permutation × repeat of what the user typed, every parameter resolved."""

    prompts: tuple[WeightedPrompt, ...]
    image_prompts: tuple[str, ...] = ()
    loras: tuple[Lora, ...] = ()
    emphasis: tuple[Emphasis, ...] = ()
    width: int = 1024
    height: int = 1024
    aspect_ratio: str = "1:1"
    seed: int | None = None
    chaos: int = 0
    stylize: int = 100
    quality: float = 1.0
    stop: int = 100
    tile: bool = False
    image_weight: float = 1.0
    # --sref links (store keys once the job service has fetched them) and --sw 0–1000.
    style_references: tuple[str, ...] = ()
    style_weight: int = 100
    weird: int = 0
    style: Style | None = None
    model: str = "v6"
    mode: Mode = "fast"
    visibility: Visibility = "public"
    draft: bool = False
    # Custom zoom factor (1 < zoom <= 2) from a Custom Zoom / Remix edit; None for a plain prompt.
    zoom: float | None = None
    # The prompt as the user would read it back: text and parameters, after permutation expansion.
    display: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    # The prompt text as written (after permutation expansion), without image links and parameters.
    text: str = ""
    # The ``--no`` items (also in ``prompts`` at weight -0.5), kept apart so a Remix can write them back.
    no: tuple[str, ...] = ()

    @property
    def positive(self) -> tuple[WeightedPrompt, ...]:
        return tuple(p for p in self.prompts if p.weight > 0)

    @property
    def negative(self) -> tuple[WeightedPrompt, ...]:
        return tuple(p for p in self.prompts if p.weight < 0)

    def to_json(self) -> dict[str, Any]:
        """The stable machine-readable form (``impasto explain --json``); see README."""
        return asdict(self)
