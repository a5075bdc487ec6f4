"""Prompt text → conditioning tensors: ``::`` segments, negatives, A1111 emphasis and ``<lora:…>`` tags.

We use compel for the weighting (per-token emphasis) and for the conjunction of segments (``.and()``: each segment
encoded on its own, pulled towards or away from the empty prompt by its weight, then concatenated along the token
axis). We build compel's prompt *objects* (``Conjunction`` of ``FlattenedPrompt`` of ``Fragment``) directly instead of
writing compel's string syntax, because user text would then have to be escaped for a second language whose escapes
leak into the tokens (compel keeps ``\\-`` as two characters). The A1111 emphasis grammar itself is not in compel
(its ``(word)1.3`` differs from ``(word:1.3)``), so ``parse_emphasis`` below is ours: a port of A1111's
``parse_prompt_attention``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import torch

from impasto.engine.registry import Family
from impasto.engine.spec import LoraRef, Prompt

# The command language's grammar (bots/language/emphasis.py): the weight may be ".5", "+0.5", "-1." too.
_LORA_TAG = re.compile(r"<lora:([^:<>]+)(?::\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+))\s*)?>", re.IGNORECASE)
#: A1111's BREAK: the word in capitals, on its own, ends the current 75-token chunk.
_BREAK = re.compile(r"\bBREAK\b")
_ATTENTION = re.compile(r"\\\(|\\\)|\\\[|\\\]|\\\\|\\|\(|\[|:\s*([+-]?[.\d]+)\s*\)|\)|\]|[^\\()\[\]:]+|:")

#: The house style (off with ``--style raw``): short on purpose, and weighted by ``--stylize`` (see house_weight).
HOUSE_POSITIVE = "highly detailed, harmonious composition, rich color, soft light"
HOUSE_NEGATIVE = "lowres, blurry, jpeg artifacts, watermark, text, deformed"


def strip_loras(text: str) -> tuple[str, list[LoraRef]]:
    """Remove ``<lora:name:w>`` tags from ``text``; return the clean text and the tags (weight 1 when left out)."""
    found = [(m.group(1).strip(), float(m.group(2)) if m.group(2) else 1.0) for m in _LORA_TAG.finditer(text)]
    if not found:
        return text, found
    clean = _LORA_TAG.sub(" ", text)
    clean = re.sub(r",(?:\s*,)+", ",", clean)  # "a, <lora:x>, b" leaves "a, , b": one comma, not two
    clean = re.sub(r"\s+([,.;])", r"\1", re.sub(r"\s{2,}", " ", clean)).strip(" ,")
    return clean, found


def break_chunks(text: str) -> list[str]:
    """A1111 ``BREAK``: the text before and after each one is encoded as its own 75-token chunk (empty ones dropped)."""
    return [piece.strip() for piece in _BREAK.split(text) if piece.strip()] or [""]


def parse_emphasis(text: str) -> list[tuple[str, float]]:
    """A1111 emphasis: ``(a)`` ×1.1, ``[a]`` ÷1.1, ``(a:1.3)`` ×1.3, nesting multiplies, ``\\(`` is a literal."""
    result: list[list[Any]] = []
    round_stack: list[int] = []
    square_stack: list[int] = []

    def multiply(start: int, factor: float) -> None:
        for item in result[start:]:
            item[1] *= factor

    for m in _ATTENTION.finditer(text):
        token, weight = m.group(0), m.group(1)
        if token.startswith("\\") and len(token) == 2:
            result.append([token[1], 1.0])
        elif token == "(":
            round_stack.append(len(result))
        elif token == "[":
            square_stack.append(len(result))
        elif weight is not None and round_stack:
            multiply(round_stack.pop(), float(weight))
        elif token == ")" and round_stack:
            multiply(round_stack.pop(), 1.1)
        elif token == "]" and square_stack:
            multiply(square_stack.pop(), 1 / 1.1)
        else:
            result.append([token, 1.0])
    for start in round_stack:
        multiply(start, 1.1)
    for start in square_stack:
        multiply(start, 1 / 1.1)
    merged: list[tuple[str, float]] = []
    for chunk, w in result:
        if merged and abs(merged[-1][1] - w) < 1e-9:
            merged[-1] = (merged[-1][0] + chunk, w)
        else:
            merged.append((chunk, w))
    return [(t, round(w, 4)) for t, w in merged if t] or [("", 1.0)]


def house_weight(stylize: int) -> float:
    """How strongly the house style segment pulls: 0 at --stylize 0, 0.5 at the default 100, 1 from 200 up."""
    return min(1.0, stylize / 200)


@dataclass(frozen=True)
class Segments:
    """The positive and negative conjunctions, weights normalised so the strongest segment of each has weight 1."""

    positive: tuple[Prompt, ...]
    negative: tuple[Prompt, ...]


def build_segments(prompts: tuple[Prompt, ...], *, style_raw: bool, stylize: int) -> Segments:
    """Split ``::`` segments by sign, add the house style, normalise weights (Midjourney weights are relative)."""
    pos = [(t, w) for t, w in prompts if w > 0 and t.strip()]
    neg = [(t, -w) for t, w in prompts if w < 0 and t.strip()]
    if not style_raw:
        if house_weight(stylize) > 0:
            pos.append((HOUSE_POSITIVE, house_weight(stylize) * max((w for _, w in pos), default=1.0)))
        neg.append((HOUSE_NEGATIVE, max((w for _, w in neg), default=1.0)))

    def normalise(items: list[tuple[str, float]]) -> tuple[Prompt, ...]:
        top = max((w for _, w in items), default=1.0)
        return tuple((t, w / top) for t, w in items) or (("", 1.0),)

    return Segments(normalise(pos), normalise(neg))


def _conjunction(segments: tuple[Prompt, ...]) -> Any:
    from compel.prompt_parser import Conjunction, FlattenedPrompt, Fragment

    # Every BREAK chunk is one more member of the conjunction: compel encodes each member as its own 77-token
    # window and concatenates them along the token axis, which is exactly A1111's "start a new chunk".
    prompts: list[Any] = []
    weights: list[float] = []
    for text, weight in segments:
        for chunk in break_chunks(text):
            prompts.append(FlattenedPrompt([Fragment(t, w) for t, w in parse_emphasis(chunk)]))
            weights.append(weight)
    return Conjunction(prompts, weights=weights)


def _plain(segments: tuple[Prompt, ...]) -> str:
    """Plain text for the pooled embedding (SDXL): emphasis marks and BREAKs removed, segments joined."""
    return ", ".join(
        " ".join("".join(t for t, _ in parse_emphasis(chunk)) for chunk in break_chunks(text)) for text, _ in segments
    )


@dataclass(frozen=True)
class Conditioning:
    """Keyword arguments for a diffusers pipeline call (``prompt_embeds`` & co)."""

    kwargs: dict[str, torch.Tensor]


class PromptEncoder:
    """Wraps compel for one loaded pipeline (one or two text encoders)."""

    def __init__(self, pipe: Any, family: Family) -> None:
        from compel import Compel, ReturnedEmbeddingsType

        self.family = family
        if family == "sd15":
            self._compels = [Compel(tokenizer=pipe.tokenizer, text_encoder=pipe.text_encoder)]
        else:
            penultimate = ReturnedEmbeddingsType.PENULTIMATE_HIDDEN_STATES_NON_NORMALIZED
            self._compels = [
                Compel(tokenizer=pipe.tokenizer, text_encoder=pipe.text_encoder, returned_embeddings_type=penultimate),
                # requires_pooled stays False: with it, compel's weighted ``.and()`` pads against a (tensor, pooled)
                # tuple and fails (compel 2.5). We take the pooled embedding from its provider ourselves.
                Compel(
                    tokenizer=pipe.tokenizer_2, text_encoder=pipe.text_encoder_2, returned_embeddings_type=penultimate
                ),
            ]

    def encode(self, segments: Segments) -> Conditioning:
        return self.encode_many([segments])[0]

    @torch.no_grad()
    def encode_many(self, variants: list[Segments]) -> list[Conditioning]:
        """One conditioning per variant (prompt editing: one per text the schedule reads), all padded to one length
        so that any of them can replace another between steps and pair with any negative under guidance."""
        per_encoder: list[list[torch.Tensor]] = []  # per text encoder: pos of each variant, then neg of each
        for compel in self._compels:
            tensors = [compel.build_conditioning_tensor_for_conjunction(_conjunction(v.positive))[0] for v in variants]
            tensors += [compel.build_conditioning_tensor_for_conjunction(_conjunction(v.negative))[0] for v in variants]
            per_encoder.append(compel.pad_conditioning_tensors_to_same_length(tensors))
        count = len(variants)
        out: list[Conditioning] = []
        for i, variant in enumerate(variants):
            pos = torch.cat([tensors[i] for tensors in per_encoder], dim=-1)
            neg = torch.cat([tensors[count + i] for tensors in per_encoder], dim=-1)
            if self.family == "sd15":
                out.append(Conditioning({"prompt_embeds": pos, "negative_prompt_embeds": neg}))
                continue
            provider = self._compels[1].conditioning_provider
            device = self._compels[1].device
            pooled = provider.get_pooled_embeddings([_plain(variant.positive)], device=device)
            neg_pooled = provider.get_pooled_embeddings([_plain(variant.negative)], device=device)
            out.append(
                Conditioning(
                    {
                        "prompt_embeds": pos,
                        "negative_prompt_embeds": neg,
                        "pooled_prompt_embeds": pooled,
                        "negative_pooled_prompt_embeds": neg_pooled,
                    }
                )
            )
        return out
