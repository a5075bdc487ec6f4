"""Rendering with the tiny models on the CPU, as a user would check the results: sizes, grid, seeds, kept pixels."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from engine_helpers import png, spec_for, to_png
from PIL import Image

from impasto.engine.engine import Engine
from impasto.engine.errors import Cancelled, InvalidInput
from impasto.engine.grid import split_grid
from impasto.engine.images import png_text
from impasto.engine.outpaint import zoom_layout
from impasto.engine.spec import Blend, Outpaint, Progress, Upscale, Vary

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(("model", "width", "height"), [("tiny-sd15", 64, 128), ("tiny-sdxl", 128, 64)])
def test_imagine_paints_four_images_and_a_grid_at_the_asked_size(
    engine: Engine, model: str, width: int, height: int
) -> None:
    result = engine.imagine(spec_for(model, width=width, height=height))
    assert (result.width, result.height) == (width, height)
    assert len(result.images) == 4
    assert [png(b).size for b in result.images] == [(width, height)] * 4
    assert result.grid is not None
    grid = png(result.grid)
    assert grid.size == (2 * width, 2 * height)
    # The grid is the four singles: 1 top-left, 2 top-right, 3 bottom-left, 4 bottom-right.
    for cell, single in zip(split_grid(grid.convert("RGB")), result.images, strict=True):
        assert np.array_equal(np.asarray(cell), np.asarray(png(single).convert("RGB")))
    assert result.is_tiny
    assert result.paints_noise
    assert result.seeds == (42, 43, 44, 45)


def test_same_seed_same_pixels_other_seed_other_pixels(engine: Engine, model: str) -> None:
    first = engine.imagine(spec_for(model))
    again = engine.imagine(spec_for(model))
    other = engine.imagine(spec_for(model, seed=43))
    assert first.images == again.images
    assert first.images[0] != other.images[0]
    # Each image has its own seed: the four differ.
    assert len({np.asarray(png(b)).tobytes() for b in first.images}) == 4


def _spread(images: tuple[bytes, ...]) -> float:
    arrays = [np.asarray(png(b).convert("RGB"), dtype=np.float32) for b in images]
    return float(np.mean([np.abs(a - b).mean() for a, b in itertools.combinations(arrays, 2)]))


def test_chaos_spreads_the_four_images(engine: Engine) -> None:
    calm = engine.imagine(spec_for("tiny-sd15", chaos=0, steps=1, guidance=1.0))
    wild = engine.imagine(spec_for("tiny-sd15", chaos=100, steps=1, guidance=1.0))
    assert _spread(wild.images) > _spread(calm.images)


def test_provenance_chunk_in_every_png(engine: Engine) -> None:
    model = "tiny-sdxl"
    spec = spec_for(model, prompts=(("a cat", 2.0), ("fog", 1.0), ("people", -0.5)), style_raw=True)
    result = engine.imagine(spec)
    text = png_text(result.images[1])
    lines = text["parameters"].splitlines()
    assert lines[0] == "a cat::2 fog::1"
    assert lines[1] == "Negative prompt: people"
    assert f"Seed: 43, Size: 64x64, Model: {model}" in lines[2]
    meta = json.loads(text["impasto"])
    assert meta["prompts"] == [["a cat", 2.0], ["fog", 1.0], ["people", -0.5]]
    # The JSON chunk names the steps and guidance the render used, as the text chunk does.
    assert f"Steps: {meta['steps']}," in lines[2]
    assert f"CFG scale: {meta['guidance']:g}," in lines[2]
    # The grid's text chunk gives the grid's size, not one image's.
    assert result.grid is not None
    assert "Size: 128x128," in png_text(result.grid)["parameters"]


def test_progress_every_step_with_a_preview_and_cancellation(engine: Engine, model: str) -> None:
    seen: list[Progress] = []
    engine.imagine(spec_for(model, steps=3), progress=seen.append)
    assert [(p.step, p.total) for p in seen] == [(1, 3), (2, 3), (3, 3)]
    assert seen[0].preview is not None
    assert seen[0].preview.size == (16, 16)
    assert (seen[0].preview_png() or b"").startswith(b"\x89PNG")

    steps: list[int] = []

    def cancel_after_one(p: Progress) -> None:
        steps.append(p.step)
        raise Cancelled(p.step, p.total)

    with pytest.raises(Cancelled, match="step 1 of 3"):
        engine.imagine(spec_for(model, steps=3), progress=cancel_after_one)
    assert steps == [1]


def test_quality_draft_and_stop_change_the_steps(engine: Engine) -> None:
    assert engine.imagine(spec_for("tiny-sd15", steps=4, quality=0.5)).steps == 2
    assert engine.imagine(spec_for("tiny-sd15", steps=4, draft=True)).steps == 2
    stopped = engine.imagine(spec_for("tiny-sd15", steps=4, stop=50))
    assert stopped.steps == 2
    assert stopped.images != engine.imagine(spec_for("tiny-sd15", steps=4)).images


def test_tile_makes_left_and_right_edges_meet(engine: Engine, model: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A seamless tile is a picture on a torus: shifting the starting noise sideways (by 2 latent pixels, so the
    UNet's stride-2 downsampling lines up) shifts the picture by 16 pixels *with wrap-around*, the right edge
    continuing into the left. Without --tile the zero-padded borders break that."""
    original = Engine._noise

    def rolled(self: Engine, *args: object, **kwargs: object) -> torch.Tensor:
        return torch.roll(original(self, *args, **kwargs), shifts=2, dims=-1)  # type: ignore[arg-type]

    def pair(tile: bool) -> tuple[np.ndarray, np.ndarray]:
        spec = spec_for(model, tile=tile, width=128, height=64, batch_size=1, guidance=1.0)
        plain = np.asarray(png(engine.imagine(spec).images[0]).convert("RGB"), dtype=np.float32)
        with monkeypatch.context() as m:
            m.setattr(Engine, "_noise", rolled)
            shifted = np.asarray(png(engine.imagine(spec).images[0]).convert("RGB"), dtype=np.float32)
        return np.roll(plain, 16, axis=1), shifted

    expected, shifted = pair(tile=True)
    assert np.abs(expected - shifted).max() <= 2  # equal up to rounding, edges included
    expected, shifted = pair(tile=False)
    assert np.abs(expected - shifted)[:, :24].mean() > 2  # the wrap-around is a seam without --tile


def test_variation_and_upscale(engine: Engine, model: str) -> None:
    source = engine.imagine(spec_for(model, batch_size=1)).images[0]
    varied = engine.render(spec_for(model), Vary(source, "strong"))
    assert varied.kind == "vary"
    assert len(varied.images) == 4
    assert (varied.width, varied.height) == (64, 64)
    upscaled = engine.render(spec_for(model), Upscale(source, creative=False))
    assert upscaled.kind == "upscale"
    assert len(upscaled.images) == 1
    assert upscaled.grid is None
    assert png(upscaled.images[0]).size == (128, 128)


def test_zoom_out_keeps_the_old_image_pixel_for_pixel(engine: Engine, model: str) -> None:
    source = png(engine.imagine(spec_for(model, batch_size=1, width=128, height=128)).images[0]).convert("RGB")
    result = engine.render(spec_for(model), Outpaint(to_png(source), zoom=2.0))
    layout = zoom_layout((128, 128), 2.0)
    kept = np.asarray(layout.inner(source))
    for data in result.images:
        out = png(data).convert("RGB")
        assert out.size == (128, 128)
        assert np.array_equal(np.asarray(out.crop(layout.box)), kept)
        assert not np.array_equal(np.asarray(out.crop((0, 0, 128, 32))), np.zeros((32, 128, 3)))


def test_pan_right_and_make_square_keep_the_old_image(engine: Engine, model: str) -> None:
    source = png(engine.imagine(spec_for(model, batch_size=1, width=128, height=64)).images[0]).convert("RGB")
    panned = engine.outpaint(spec_for(model, batch_size=1), to_png(source), pan="right")
    out = png(panned.images[0]).convert("RGB")
    assert out.size == (192, 64)
    assert np.array_equal(np.asarray(out.crop((0, 0, 128, 64))), np.asarray(source))
    squared = engine.outpaint(spec_for(model, batch_size=1), to_png(source), square=True)
    out = png(squared.images[0]).convert("RGB")
    assert out.size == (128, 128)
    assert np.array_equal(np.asarray(out.crop((0, 32, 128, 96))), np.asarray(source))


def test_inpaint_changes_only_the_masked_region(engine: Engine, model: str) -> None:
    source = png(engine.imagine(spec_for(model, batch_size=1)).images[0]).convert("RGB")
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 48, 48))
    result = engine.inpaint(spec_for(model, batch_size=2), to_png(source), to_png(mask))
    keep = np.asarray(mask) == 0
    for data in result.images:
        out = np.asarray(png(data).convert("RGB"))
        assert np.array_equal(out[keep], np.asarray(source)[keep])
        assert not np.array_equal(out[~keep], np.asarray(source)[~keep])
    with pytest.raises(InvalidInput, match="mask is empty"):
        engine.inpaint(spec_for(model), to_png(source), to_png(Image.new("L", (64, 64), 0)))


def test_blend_two_images_to_the_asked_dimensions(engine: Engine, model: str) -> None:
    red, blue = Image.new("RGB", (80, 60), (200, 30, 30)), Image.new("RGB", (60, 80), (30, 30, 200))
    spec = spec_for(model, width=256, height=256, batch_size=2)
    result = engine.render(spec, Blend((to_png(red), to_png(blue)), "landscape"))
    assert result.kind == "blend"
    assert len(result.images) == 2
    assert (result.width, result.height) == (320, 192)  # 3:2 at about 256² pixels, multiples of 64
    with pytest.raises(InvalidInput, match="2 to 5 images"):
        engine.blend(spec_for(model), [to_png(red)])
    # The tiny models have an IP-Adapter: an image prompt (--iw) is painted from noise through it, not by img2img
    # (test_references.py covers the adapter and the latent-average path of a model without one).
    prompted = engine.imagine(spec_for(model, image_prompts=(to_png(red),), image_weight=2.0, batch_size=1))
    assert prompted.kind == "imagine"
    assert "Denoising strength" not in prompted.parameters[0]


def test_a_lora_changes_the_render_and_leaves_no_trace(engine: Engine, lora_dir: Path) -> None:
    pytest.importorskip("peft", reason="diffusers loads LoRAs through peft")
    from safetensors.torch import save_file

    unet = engine.models.get("tiny-sd15").pipe.unet
    g = torch.Generator().manual_seed(0)
    weights = {}
    for name, module in unet.named_modules():
        if name.endswith(("attn1.to_q", "attn2.to_v")) and isinstance(module, torch.nn.Linear):
            weights[f"unet.{name}.lora_A.weight"] = torch.randn(4, module.in_features, generator=g) * 0.5
            weights[f"unet.{name}.lora_B.weight"] = torch.randn(module.out_features, 4, generator=g) * 0.5
    save_file(weights, str(lora_dir / "ink.safetensors"))
    plain = engine.imagine(spec_for("tiny-sd15", batch_size=1))
    inked = engine.imagine(spec_for("tiny-sd15", batch_size=1, prompts=(("a lighthouse at dusk <lora:ink:1>", 1.0),)))
    assert inked.images != plain.images
    assert engine.imagine(spec_for("tiny-sd15", batch_size=1)).images == plain.images  # unloaded after the render
    (lora_dir / "ink.safetensors").unlink()
