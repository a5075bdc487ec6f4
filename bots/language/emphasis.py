"""A1111-style emphasis and LoRA tags inside a prompt segment.

The tags and brackets stay in the segment text (the engine reads them with compel); this module only reports them:
``<lora:name:0.8>`` → ``Lora("name", 0.8)``, and ``(word)`` ×1.1, ``((word))`` ×1.21, ``(word:1.3)``, ``[word]`` ÷1.1
→ ``Emphasis(text, weight)`` for every span whose weight is not 1. ``\\(`` ``\\)`` ``\\[`` ``\\]`` are literal.

The bracket rules are those of AUTOMATIC1111's ``parse_prompt_attention`` (unclosed brackets apply to the end), but
computed in one pass with a difference array over log-weights instead of re-multiplying every earlier chunk per
bracket, so 3000 nested brackets stay linear.
"""

from __future__ import annotations

import math
import re

from impasto.bots.language.errors import PromptError
from impasto.bots.language.job import Emphasis, Lora
from impasto.engine.prompt_schedule import all_variants, has_schedule

LORA = re.compile(r"<lora:([^:<>]*)(?::([^<>]*))?>", re.IGNORECASE)
_LORA_NAME = re.compile(r"[\w.\- ]{1,128}")
_NUMBER = re.compile(r"[+-]?(?:\d{1,6}(?:\.\d{0,6})?|\.\d{1,6})")
MAX_LORA_WEIGHT = 10.0
MAX_EMPHASIS = 10.0

# A1111's tokeniser: escapes, brackets, "(text:1.3)" closers, runs of plain text, lone colons.
_ATTENTION = re.compile(r"\\\(|\\\)|\\\[|\\]|\\\\|\\|\(|\[|:\s*([+-]?[.\d]+)\s*\)|\)|]|[^\\()\[\]:]+|:")
_ROUND = 1.1
_SQUARE = 1 / 1.1


def parse_loras(text: str) -> tuple[Lora, ...]:
    loras: list[Lora] = []
    for match in LORA.finditer(text):
        name, raw_weight = match[1].strip(), match[2]
        if not _LORA_NAME.fullmatch(name) or ".." in name:
            raise PromptError(
                f"LoRA name {name!r} is not allowed; use the file name from the operator's LoRA folder "
                "(letters, digits, spaces, . _ -)",
                option="<lora>",
                value=match[0],
            )
        weight = 1.0
        if raw_weight is not None:
            raw_weight = raw_weight.strip()
            if not _NUMBER.fullmatch(raw_weight) or abs(float(raw_weight)) > MAX_LORA_WEIGHT:
                raise PromptError(
                    f"LoRA weight {raw_weight!r} in {match[0]} is not allowed; "
                    f"use a number from -{MAX_LORA_WEIGHT:g} to {MAX_LORA_WEIGHT:g}",
                    option="<lora>",
                    value=match[0],
                )
            weight = float(raw_weight)
        loras.append(Lora(name, weight))
    return tuple(loras)


def parse_emphasis(text: str) -> tuple[Emphasis, ...]:
    """The emphasised spans of one segment (LoRA tags removed first), merged, weights rounded to 4 places.

    With A1111 prompt editing or alternation (``[cat:dog:0.5]``, ``[red|blue]``) the spans of every text the
    schedule can read are reported, each once: the brackets of a schedule are not ÷1.1 emphasis.
    """
    text = LORA.sub(" ", text)
    if has_schedule(text):
        found: dict[Emphasis, None] = {}
        for variant in all_variants(text):
            found.update(dict.fromkeys(_spans(variant)))
        return tuple(found)
    return _spans(text)


def _spans(text: str) -> tuple[Emphasis, ...]:
    chunks: list[str] = []
    log_diff: list[float] = [0.0]
    zero_diff: list[int] = [0]
    round_open: list[int] = []
    square_open: list[int] = []

    def apply(start: int, multiplier: float) -> None:
        end = len(chunks)
        if start >= end:
            return
        if multiplier == 0:
            zero_diff[start] += 1
            zero_diff[end] -= 1
        else:
            log_diff[start] += math.log(multiplier)
            log_diff[end] -= math.log(multiplier)

    for match in _ATTENTION.finditer(text):
        token, weight = match[0], match[1]
        if token.startswith("\\"):
            chunks.append(token[1:] if len(token) > 1 else token)
        elif token == "(":
            round_open.append(len(chunks))
        elif token == "[":
            square_open.append(len(chunks))
        elif weight is not None and round_open:
            if not _NUMBER.fullmatch(weight) or not 0 <= float(weight) <= MAX_EMPHASIS:
                raise PromptError(
                    f"emphasis weight {weight!r} in {token.strip()!r} is not allowed; "
                    f"use (text:1.3) with a number from 0 to {MAX_EMPHASIS:g}",
                    option="(text:weight)",
                    value=weight,
                )
            apply(round_open.pop(), float(weight))
        elif token == ")" and round_open:
            apply(round_open.pop(), _ROUND)
        elif token == "]" and square_open:
            apply(square_open.pop(), _SQUARE)
        else:
            chunks.append(token)
        while len(log_diff) <= len(chunks):
            log_diff.append(0.0)
            zero_diff.append(0)
    for start in round_open:
        apply(start, _ROUND)
    for start in square_open:
        apply(start, _SQUARE)

    spans: list[tuple[str, float]] = []
    log_weight, zeros = 0.0, 0
    for index, chunk in enumerate(chunks):
        log_weight += log_diff[index]
        zeros += zero_diff[index]
        # Clamped: 1000 nested (x:10) would overflow exp; such weights are meaningless anyway.
        weight = 0.0 if zeros else round(math.exp(min(log_weight, 700.0)), 4)
        if spans and spans[-1][1] == weight:
            spans[-1] = (spans[-1][0] + chunk, weight)
        else:
            spans.append((chunk, weight))
    return tuple(Emphasis(" ".join(t.split()), w) for t, w in spans if w != 1.0 and t.strip())
