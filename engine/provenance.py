"""Provenance in every PNG: the A1111 ``parameters`` text chunk that other tools read, plus our own JSON.

A1111 format (what stable-diffusion-webui writes and reads)::

    a lighthouse at dusk::2 fog
    Negative prompt: people
    Steps: 30, Sampler: DPMSolverMultistepScheduler, CFG scale: 7.0, Seed: 1234, Size: 1024x1024, Model: v6, ...

The ``impasto`` chunk holds the spec as JSON (weights, every parameter), so that an action on a file written by
``impasto imagine`` re-uses the exact prompt. For a translated prompt, ``parameters`` holds the English the model
read and the JSON holds both: ``prompts`` as the user wrote them, ``read_as`` as the model read them.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from impasto.engine.spec import Kind, Prompt, RenderSpec

PARAMETERS_KEY = "parameters"
IMPASTO_KEY = "impasto"


def _weight(w: float) -> str:
    return f"{w:g}"


def prompt_text(prompts: tuple[Prompt, ...]) -> str:
    """Positive segments in Midjourney's ``::`` syntax (a weight of 1 is left out when alone)."""
    pos = [p for p in prompts if p[1] > 0]
    if len(pos) == 1 and pos[0][1] == 1:
        return pos[0][0]
    return " ".join(f"{t}::{_weight(w)}" for t, w in pos)


def negative_text(prompts: tuple[Prompt, ...]) -> str:
    return ", ".join(t for t, w in prompts if w < 0)


def parameters(
    spec: RenderSpec,
    *,
    kind: Kind,
    seed: int,
    steps: int,
    guidance: float,
    sampler: str,
    width: int,
    height: int,
    strength: float | None = None,
    negative_extra: str = "",
) -> str:
    """The A1111 ``parameters`` text for one image."""
    negative = ", ".join(x for x in (negative_text(spec.prompts), negative_extra) if x)
    fields: list[tuple[str, str]] = [
        ("Steps", str(steps)),
        ("Sampler", sampler),
        ("CFG scale", _weight(guidance)),
        ("Seed", str(seed)),
        ("Size", f"{width}x{height}"),
        ("Model", spec.model),
    ]
    if strength is not None:
        fields.append(("Denoising strength", _weight(strength)))
    fields += [("Job", kind), ("Chaos", str(spec.chaos)), ("Stylize", str(spec.stylize))]
    if spec.tile:
        fields.append(("Tiling", "True"))
    if spec.style_raw:
        fields.append(("Style", "raw"))
    lines = [prompt_text(spec.prompts)]
    if negative:
        lines.append(f"Negative prompt: {negative}")
    lines.append(", ".join(f"{k}: {v}" for k, v in fields))
    return "\n".join(lines)


def spec_json(spec: RenderSpec, seed: int, *, steps: int | None = None, guidance: float | None = None) -> str:
    """The spec as JSON, without image bytes (they would bloat every PNG); ``steps``/``guidance`` are the values the
    render used (the spec leaves them None when the model's registry entry decides), as in the text chunk."""
    data: dict[str, Any] = asdict(spec)
    data["image_prompts"] = len(spec.image_prompts)
    data["style_references"] = len(spec.style_references)
    data["seed"] = seed
    if steps is not None:
        data["steps"] = steps
    if guidance is not None:
        data["guidance"] = guidance
    original = data.pop("original_prompts", None)
    if original is not None:
        data["read_as"], data["prompts"] = data["prompts"], original
    return json.dumps(data, separators=(",", ":"))


def spec_from_text(text: dict[str, str]) -> dict[str, Any] | None:
    """The ``impasto`` JSON of a PNG's text chunks, or a best-effort reading of an A1111 ``parameters`` chunk."""
    if IMPASTO_KEY in text:
        try:
            data = json.loads(text[IMPASTO_KEY])
        except json.JSONDecodeError:
            data = None
        if isinstance(data, dict):
            data["prompts"] = tuple((str(t), float(w)) for t, w in data.get("prompts", ()))
            data["loras"] = tuple((str(n), float(w)) for n, w in data.get("loras", ()))
            return data
    if PARAMETERS_KEY in text:
        return parse_parameters(text[PARAMETERS_KEY])
    return None


def parse_parameters(text: str) -> dict[str, Any]:
    """Read an A1111 ``parameters`` chunk: prompt, negative prompt and the ``Key: value`` fields we know."""
    lines = text.strip().splitlines()
    result: dict[str, Any] = {}
    last = lines[-1] if lines and ": " in lines[-1] and "Steps:" in lines[-1] else ""
    body = lines[:-1] if last else lines
    positive = [line for line in body if not line.startswith("Negative prompt:")]
    negative = [line.removeprefix("Negative prompt:").strip() for line in body if line.startswith("Negative prompt:")]
    prompts: list[tuple[str, float]] = [(" ".join(positive).strip(), 1.0)] if any(positive) else []
    prompts += [(n, -1.0) for n in negative if n]
    result["prompts"] = tuple(prompts)
    for part in last.split(", "):
        key, _, value = part.partition(": ")
        if key == "Seed" and value.isdigit():
            result["seed"] = int(value)
        elif key == "Model":
            result["model"] = value
        elif key == "Size" and "x" in value:
            w, _, h = value.partition("x")
            if w.isdigit() and h.isdigit():
                result["width"], result["height"] = int(w), int(h)
    return result
