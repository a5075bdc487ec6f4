"""The stored form of a parsed job (``Job.to_json()``) read back into the command language's ``Job``.

A Remix edit needs the original ``Job`` (``parse_remix(original, text, …)``); the job row keeps only its JSON.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from impasto.bots.language.job import Emphasis, Job, Lora, WeightedPrompt

_FIELDS = {f.name for f in dataclasses.fields(Job)}


def job_from_json(data: Mapping[str, Any]) -> Job:
    """Rebuild a ``Job`` from ``Job.to_json()``; unknown keys (from a newer release) are ignored."""
    values = {key: value for key, value in data.items() if key in _FIELDS}
    values["prompts"] = tuple(WeightedPrompt(**p) for p in data.get("prompts", ()))
    values["image_prompts"] = tuple(data.get("image_prompts", ()))
    values["style_references"] = tuple(data.get("style_references", ()))
    values["loras"] = tuple(Lora(**lora) for lora in data.get("loras", ()))
    values["emphasis"] = tuple(Emphasis(**e) for e in data.get("emphasis", ()))
    values["extra"] = dict(data.get("extra", {}))
    return Job(**values)
