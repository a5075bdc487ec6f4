"""/blend and Remix / Custom Zoom edits."""

from __future__ import annotations

import dataclasses

import pytest

from impasto.bots.language.errors import PromptError
from impasto.bots.language.job import Job, WeightedPrompt
from impasto.bots.language.parser import parse_blend, parse_imagine, parse_remix
from impasto.bots.language.prefs import Preferences
from impasto.engine.registry import Registry

A, B, C = "https://cdn.discordapp.com/attachments/1/2/a.png", "https://e.com/b.jpg", "https://e.com/c"


@pytest.mark.parametrize(
    ("dimensions", "ratio", "size"),
    [
        ("portrait", "2:3", (832, 1280)),
        ("Square", "1:1", (1024, 1024)),
        ("landscape", "3:2", (1280, 832)),
        (None, "1:1", (1024, 1024)),
    ],
)
def test_blend(dimensions: str | None, ratio: str, size: tuple[int, int], registry: Registry) -> None:
    job = parse_blend([A, B, C], dimensions, registry=registry)
    assert job.image_prompts == (A, B, C)
    assert job.prompts == ()
    assert (job.aspect_ratio, (job.width, job.height)) == (ratio, size)


def test_blend_counts_and_links(registry: Registry) -> None:
    with pytest.raises(PromptError, match="2 to 5 images, not 1"):
        parse_blend([A], None, registry=registry)
    with pytest.raises(PromptError, match="2 to 5 images, not 6"):
        parse_blend([A] * 6, None, registry=registry)
    with pytest.raises(PromptError, match="invalid image link"):
        parse_blend([A, "not a link"], None, registry=registry)
    with pytest.raises(PromptError, match="portrait, square, landscape") as info:
        parse_blend([A, B], "wide", registry=registry)
    assert (info.value.option, info.value.value) == ("dimensions", "wide")


def test_blend_uses_preferences(registry: Registry) -> None:
    prefs = Preferences(suffix="--ar 16:9 --relax", settings="--style raw")
    job = parse_blend([A, B], None, registry=registry, preferences=prefs)
    assert (job.aspect_ratio, job.mode, job.style) == ("16:9", "relax", "raw")
    job = parse_blend([A, B], "portrait", registry=registry, preferences=prefs)
    assert job.aspect_ratio == "2:3"


@pytest.fixture
def original(registry: Registry) -> Job:
    (job,) = parse_imagine("a red fox --ar 16:9 --seed 7 --no snow --tile --s 250", registry=registry)
    return job


def test_custom_zoom_keeps_the_prompt(original: Job, registry: Registry) -> None:
    job = parse_remix(original, "--zoom 1.5", registry=registry)
    assert job.zoom == 1.5
    assert job.prompts == (WeightedPrompt("a red fox"), WeightedPrompt("snow", -0.5))
    assert (job.aspect_ratio, job.seed, job.tile, job.stylize) == ("16:9", 7, True, 250)
    assert job.display == "a red fox --zoom 1.5 --ar 16:9 --seed 7 --stylize 250 --tile --no snow"


def test_custom_zoom_can_change_ratio(original: Job, registry: Registry) -> None:
    job = parse_remix(original, "a red fox --zoom 2 --ar 1:1", registry=registry)
    assert (job.zoom, job.aspect_ratio, job.width, job.height) == (2.0, "1:1", 1024, 1024)


@pytest.mark.parametrize("zoom", ["1", "0.5", "2.5", "x"])
def test_zoom_range(zoom: str, original: Job, registry: Registry) -> None:
    with pytest.raises(PromptError, match="more than 1 and at most 2") as info:
        parse_remix(original, f"--zoom {zoom}", registry=registry)
    assert info.value.option == "--zoom"


def test_remix_replaces_text_and_keeps_other_parameters(original: Job, registry: Registry) -> None:
    job = parse_remix(original, "a blue fox --v 5 --c 20", registry=registry)
    assert job.prompts == (WeightedPrompt("a blue fox"),)  # the old --no went with the old text
    assert (job.model, job.chaos, job.seed, job.aspect_ratio, job.tile) == ("v5", 20, 7, "16:9", True)
    assert (job.width, job.height) == (704, 384)
    assert job.zoom is None


def test_remix_adds_no_items_when_text_is_kept(original: Job, registry: Registry) -> None:
    job = parse_remix(original, "--no rain", registry=registry)
    assert job.no == ("snow", "rain")


def test_remix_makes_one_job(original: Job, registry: Registry) -> None:
    with pytest.raises(PromptError, match="one job"):
        parse_remix(original, "a {red, blue} fox", registry=registry)
    with pytest.raises(PromptError, match="Remix"):
        parse_remix(original, "a fox --r 2", registry=registry)


def test_remix_of_a_job_read_back_from_json(original: Job, registry: Registry) -> None:
    # The job service stores Job.to_json() and rebuilds the Job from it: sequences come back as lists.
    stored = dataclasses.replace(original, no=["snow"], image_prompts=[])  # type: ignore[arg-type]
    job = parse_remix(stored, "--no rain --zoom 2", registry=registry)
    assert job.no == ("snow", "rain")
    assert job.prompts == (WeightedPrompt("a red fox"), WeightedPrompt("snow", -0.5), WeightedPrompt("rain", -0.5))
