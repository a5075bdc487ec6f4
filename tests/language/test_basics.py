"""The smallest prompts, end to end: defaults, sizes, the model."""

from __future__ import annotations

import json

from impasto.bots.language.job import WeightedPrompt
from impasto.bots.language.parser import parse_imagine
from impasto.engine.registry import Registry


def test_plain_prompt_is_fully_defaulted(registry: Registry) -> None:
    (job,) = parse_imagine("a lighthouse at dusk", registry=registry)
    assert job.prompts == (WeightedPrompt("a lighthouse at dusk", 1.0),)
    assert (job.width, job.height, job.aspect_ratio) == (1024, 1024, "1:1")
    assert job.model == "v6"
    assert job.seed is None
    assert (job.chaos, job.stylize, job.quality, job.stop, job.weird) == (0, 100, 1.0, 100, 0)
    assert (job.tile, job.style, job.mode, job.visibility, job.draft, job.zoom) == (
        False,
        None,
        "fast",
        "public",
        False,
        None,
    )
    assert job.display == "a lighthouse at dusk"


def test_issue_example(registry: Registry) -> None:
    (job,) = parse_imagine("https://example.com/a.png space <lora:ink:0.8> --ar 16:9 --no red", registry=registry)
    data = json.loads(json.dumps(job.to_json()))
    assert data["prompts"] == [{"text": "space <lora:ink:0.8>", "weight": 1.0}, {"text": "red", "weight": -0.5}]
    assert data["image_prompts"] == ["https://example.com/a.png"]
    assert data["loras"] == [{"name": "ink", "weight": 0.8}]
    assert (data["width"], data["height"], data["aspect_ratio"]) == (1344, 768, "16:9")
