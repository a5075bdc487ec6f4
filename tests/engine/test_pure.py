"""The torch-free parts a user sees indirectly: grid layout, canvas geometry, prompt reading, parameter mappings."""

from __future__ import annotations

import pytest
from PIL import Image

from impasto.engine.conditioning import HOUSE_POSITIVE, build_segments, parse_emphasis, strip_loras
from impasto.engine.engine import chaos_mix, guidance_for, image_prompt_strength, image_seeds, steps_for
from impasto.engine.errors import InvalidInput
from impasto.engine.grid import compose_grid, split_grid
from impasto.engine.outpaint import pan_layout, size_for_aspect, square_layout, zoom_layout
from impasto.engine.provenance import parameters, parse_parameters
from impasto.engine.spec import RenderSpec

COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]


def test_grid_puts_1_top_left_2_top_right_3_bottom_left_4_bottom_right() -> None:
    grid = compose_grid([Image.new("RGB", (32, 48), c) for c in COLOURS])
    assert grid.size == (64, 96)
    assert grid.getpixel((5, 5)) == COLOURS[0]
    assert grid.getpixel((40, 5)) == COLOURS[1]
    assert grid.getpixel((5, 60)) == COLOURS[2]
    assert grid.getpixel((40, 60)) == COLOURS[3]
    assert [im.getpixel((0, 0)) for im in split_grid(grid)] == COLOURS


def test_grid_refuses_mixed_sizes() -> None:
    with pytest.raises(ValueError, match="share one size"):
        compose_grid([Image.new("RGB", (8, 8)), Image.new("RGB", (8, 16))])


@pytest.mark.parametrize(("ratio", "expected"), [((1, 1), (1024, 1024)), ((16, 9), (1344, 768)), ((2, 3), (832, 1280))])
def test_size_for_aspect_stays_near_native(ratio: tuple[int, int], expected: tuple[int, int]) -> None:
    w, h = size_for_aspect(1024, *ratio)
    assert (w, h) == expected
    assert w % 64 == 0
    assert h % 64 == 0
    assert abs(w * h / 1024**2 - 1) < 0.1


def test_zoom_keeps_the_canvas_and_centres_a_smaller_image() -> None:
    layout = zoom_layout((512, 512), 2.0)
    assert layout.canvas == (512, 512)
    assert layout.box == (128, 128, 384, 384)
    mask = layout.mask()
    assert mask.getpixel((0, 0)) == 255
    assert mask.getpixel((256, 256)) == 0
    with pytest.raises(InvalidInput, match="between 1 and 2"):
        zoom_layout((512, 512), 2.5)


def test_pan_grows_one_side_and_keeps_the_old_image_opposite() -> None:
    right = pan_layout((512, 512), "right", 1024)
    assert right.canvas == (768, 512)
    assert right.box == (0, 0, 512, 512)
    left = pan_layout((512, 512), "left", 1024)
    assert left.box == (256, 0, 768, 512)
    up = pan_layout((512, 512), "up", 1024)
    assert up.canvas == (512, 768)
    assert up.box == (0, 256, 512, 768)
    # At native size the canvas would pass the budget: everything shrinks back to about native pixels.
    big = pan_layout((1024, 1024), "down", 1024)
    assert big.canvas[0] * big.canvas[1] <= 1.25 * 1024 * 1024
    assert big.box[0] == (big.canvas[0] - (big.box[2] - big.box[0])) // 2


def test_make_square_centres_the_image_and_refuses_a_square_one() -> None:
    layout = square_layout((512, 256), 512)
    assert layout.canvas == (512, 512)
    assert layout.box == (0, 128, 512, 384)
    with pytest.raises(InvalidInput, match="already square"):
        square_layout((256, 256), 512)


def test_a1111_emphasis() -> None:
    assert parse_emphasis("a (red:1.3) cat") == [("a ", 1.0), ("red", 1.3), (" cat", 1.0)]
    assert parse_emphasis("((big)) [small]") == [("big", 1.21), (" ", 1.0), ("small", 0.9091)]
    assert parse_emphasis(r"\(literal\)") == [("(literal)", 1.0)]


def test_lora_tags_are_stripped_from_the_text() -> None:
    assert strip_loras("a cat <lora:ink:0.8>, <lora:Paper> sketch") == ("a cat, sketch", [("ink", 0.8), ("Paper", 1.0)])


def test_segments_go_by_sign_and_weights_are_relative() -> None:
    seg = build_segments((("cat", 2.0), ("dog", 1.0), ("people", -0.5)), style_raw=True, stylize=100)
    assert seg.positive == (("cat", 1.0), ("dog", 0.5))
    assert seg.negative == (("people", 1.0),)
    house = build_segments((("cat", 1.0),), style_raw=False, stylize=100)
    assert house.positive[-1] == (HOUSE_POSITIVE, 0.5)
    assert house.negative[-1][0].startswith("lowres")
    empty = build_segments((("cat", 1.0),), style_raw=True, stylize=100)
    assert empty.negative == (("", 1.0),)


def test_parameter_mappings() -> None:
    assert [steps_for(30, q, False) for q in (0.25, 0.5, 1, 2)] == [8, 15, 30, 60]
    assert steps_for(30, 1, True) == 15
    assert guidance_for(7.0, 100) == 7.0
    assert guidance_for(7.0, 0) == 8.75
    assert guidance_for(7.0, 1000) == 3.5
    assert chaos_mix(0) == pytest.approx(0.6)
    assert chaos_mix(100) == 1.0
    assert image_prompt_strength(1.0) == 0.75
    assert image_prompt_strength(3.0) == 0.25
    assert image_seeds(2**32 - 1, 3) == (2**32 - 1, 0, 1)


def test_provenance_is_a1111_parameters() -> None:
    spec = RenderSpec(model="v6", prompts=(("a cat", 2.0), ("fog", 1.0), ("people", -0.5)), seed=9)
    text = parameters(spec, kind="imagine", seed=9, steps=30, guidance=7.0, sampler="Euler", width=1024, height=768)
    lines = text.splitlines()
    assert lines[0] == "a cat::2 fog::1"
    assert lines[1] == "Negative prompt: people"
    assert lines[2].startswith("Steps: 30, Sampler: Euler, CFG scale: 7, Seed: 9, Size: 1024x768, Model: v6")
    back = parse_parameters(text)
    assert back["seed"] == 9
    assert back["model"] == "v6"
    assert (back["width"], back["height"]) == (1024, 768)
