"""Upscale with a super-resolution model (spandrel): the tiny SR model through the real loading path, 2× and 4×,
tiles that join without seams, Subtle (SR alone) vs Creative (SR + tiled img2img), and the old path without SR."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from engine_helpers import png, spec_for, to_png
from PIL import Image

from impasto.engine.engine import Engine
from impasto.engine.errors import InvalidInput, UnsafeCheckpoint
from impasto.engine.registry import Registry, RegistryError, load_registry
from impasto.engine.spec import Progress, Upscale
from impasto.engine.upscaler import (
    blend_tiles,
    ensure_tiny_sr,
    load_upscaler,
    refine_tiles,
    tiny_sr_state_dict,
)

pytest.importorskip("spandrel")

CPU = torch.device("cpu")


def _photo(width: int, height: int, seed: int = 0) -> Image.Image:
    """A smooth picture with some edges (gradients and a disc), so SR and tiling have structure to work on."""
    y, x = np.mgrid[0:height, 0:width]
    rng = np.random.default_rng(seed)
    disc = ((x - width / 2) ** 2 + (y - height / 3) ** 2 < (min(width, height) / 4) ** 2) * 90
    pixels = np.stack([x * 255 / width, y * 255 / height, 128 + disc + rng.integers(0, 20, (height, width))], -1)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def test_tiny_sr_loads_from_safetensors_through_spandrel(model_cache: Path) -> None:
    sr = load_upscaler("builtin:tiny-sr", model_cache, CPU, torch.float32)
    assert sr.native_scale == 4
    assert sr.name == "RealESRGAN Compact x4"
    assert ensure_tiny_sr(model_cache).suffix == ".safetensors"


def test_pth_is_read_weights_only_and_a_code_pickle_is_refused(tmp_path: Path) -> None:
    weights = tmp_path / "sr-x2.pth"
    torch.save({"params_ema": tiny_sr_state_dict(2)}, weights)  # Real-ESRGAN's own layout
    sr = load_upscaler(str(weights), tmp_path, CPU, torch.float32)
    assert sr.native_scale == 2
    out = sr.upscale(_photo(40, 24), 4)  # a 2× model twice for 4×
    assert out.size == (160, 96)

    evil = tmp_path / "evil.pth"
    torch.save({"weights": _RunsCode()}, evil)
    with pytest.raises(UnsafeCheckpoint):
        load_upscaler(str(evil), tmp_path, CPU, torch.float32)
    assert not (tmp_path / "pwned").exists()
    with pytest.raises(UnsafeCheckpoint):
        load_upscaler(str(tmp_path / "model.ckpt"), tmp_path, CPU, torch.float32)
    with pytest.raises(InvalidInput, match="do not exist"):
        load_upscaler(str(tmp_path / "missing.safetensors"), tmp_path, CPU, torch.float32)


class _RunsCode:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {os.getcwd()}/pwned",))


def test_tiles_join_without_seams(model_cache: Path) -> None:
    sr = load_upscaler("builtin:tiny-sr", model_cache, CPU, torch.float32)
    image = _photo(100, 70)
    whole = np.asarray(sr.upscale(image, 4, tile=1000), dtype=np.int16)
    tiled = np.asarray(sr.upscale(image, 4, tile=32, margin=16), dtype=np.int16)
    assert whole.shape == tiled.shape == (280, 400, 3)
    assert np.abs(whole - tiled).max() <= 1  # float rounding only
    seamy = np.asarray(sr.upscale(image, 4, tile=32, margin=0), dtype=np.int16)
    assert np.abs(whole - seamy).max() > 8  # without context the tile edges show: the margin is what hides them


def test_refine_tiles_cover_every_pixel_and_blend_smoothly() -> None:
    tiles = refine_tiles(600, 344, 256, 32)
    covered = np.zeros((344, 600), dtype=int)
    for tile in tiles:
        left, top, right, bottom = tile.box
        assert (right - left, bottom - top) == (256, 256)
        assert left % 8 == 0
        assert top % 8 == 0
        covered[top:bottom, left:right] += 1
    assert covered.min() >= 1
    assert len(tiles) == 3 * 2
    flat = blend_tiles((600, 344), tiles, [Image.new("RGB", (256, 256), (10, 200, 30))] * len(tiles))
    assert np.all(np.asarray(flat) == (10, 200, 30))
    assert [t.box for t in refine_tiles(128, 128, 256, 32)] == [(0, 0, 128, 128)]


@pytest.mark.parametrize("scale", [2, 4])
def test_subtle_is_the_sr_model_alone(engine: Engine, model_cache: Path, scale: int) -> None:
    source = _photo(64, 48)
    result = engine.render(spec_for("tiny-sdxl"), Upscale(to_png(source), scale=scale))
    out = png(result.images[0]).convert("RGB")
    assert out.size == (64 * scale, 48 * scale)
    assert (result.kind, result.steps, len(result.images), result.grid) == ("upscale", 0, 1, None)
    expected = load_upscaler("builtin:tiny-sr", model_cache, CPU, torch.float32).upscale(source, scale)
    assert np.array_equal(np.asarray(out), np.asarray(expected))
    assert "Sampler: RealESRGAN Compact x4" in result.parameters[0]


def test_creative_refines_the_sr_image_over_tiles(engine: Engine, model: str) -> None:
    source = _photo(192, 160)
    subtle = png(engine.render(spec_for(model), Upscale(to_png(source), scale=2)).images[0]).convert("RGB")
    seen: list[Progress] = []
    creative = engine.upscale(spec_for(model, steps=6), to_png(source), creative=True, scale=2, progress=seen.append)
    out = png(creative.images[0]).convert("RGB")
    assert out.size == subtle.size == (384, 320)
    assert creative.steps > 0
    difference = np.abs(np.asarray(out, dtype=np.int16) - np.asarray(subtle, dtype=np.int16))
    assert difference.mean() > 1  # the refine repainted
    tiles = len(refine_tiles(384, 320, 256, 32))
    assert tiles == 4
    assert [p.step for p in seen] == list(range(1, len(seen) + 1))  # progress counts every tile's steps
    assert seen[-1].total == len(seen)
    assert len(seen) == tiles * 2  # 6 steps × 0.35 = 2 steps per tile


def test_without_sr_weights_the_old_path_stays(engine: Engine, registry: Registry) -> None:
    plain = dataclasses.replace(registry.get("tiny-sd15"), name="no-sr", upscaler=None)
    old = Engine(
        Registry({**registry.models, "no-sr": plain}, "no-sr"), device="cpu", cache_dir=engine.models.cache_dir
    )
    source = to_png(_photo(64, 64))
    for scale in (2, 4):
        result = old.render(spec_for("no-sr"), Upscale(source, scale=scale))
        assert png(result.images[0]).size == (64 * scale, 64 * scale)
        assert result.steps > 0
        assert "Denoising strength: 0.25" in result.parameters[0]
    with pytest.raises(InvalidInput, match="scale must be 2 or 4"):
        old.render(spec_for("no-sr"), Upscale(source, scale=3))


def test_registry_reads_the_upscaler(tmp_path: Path) -> None:
    path = tmp_path / "models.toml"
    path.write_text(
        'default = "a"\nupscaler = "/models/4x-UltraSharp.safetensors"\n'
        '[models.a]\nfamily = "sdxl"\nsource = "org/a"\n'
        '[models.b]\nfamily = "sd15"\nsource = "org/b"\nupscaler = "/models/RealESRGAN_x4plus.pth"\n',
        encoding="utf-8",
    )
    registry = load_registry(path)
    assert registry.get("a").upscaler == "/models/4x-UltraSharp.safetensors"
    assert registry.get("b").upscaler == "/models/RealESRGAN_x4plus.pth"
    assert registry.get("tiny-sdxl").upscaler == "builtin:tiny-sr"
    path.write_text('default = "a"\n[models.a]\nfamily = "sdxl"\nsource = "org/a"\nupscaler = "x.ckpt"\n')
    with pytest.raises(RegistryError, match=r"upscaler must be a \.safetensors or \.pth"):
        load_registry(path)


@pytest.mark.slow
def test_upscale_bench_prints_a_row_per_case(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from impasto.engine.upscale_bench import main

    out = tmp_path / "rows.json"
    assert main(["--size", "64", "--only", "sr-subtle", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "sr-subtle" in printed
    rows = json.loads(out.read_text())
    cases = [(r["case"], r["scale"], r["out"]) for r in rows]
    assert cases == [("sr-subtle", 2, "128x128"), ("sr-subtle", 4, "256x256")]
    assert all(float(r["seconds"]) > 0 and int(r["peak_rss_mb"]) > 0 for r in rows)


def test_an_upscale_past_8192_px_a_side_is_refused_before_any_work(engine: Engine) -> None:
    wide = to_png(Image.new("RGB", (2100, 64), (1, 2, 3)))
    with pytest.raises(InvalidInput, match="would exceed 8192 px a side"):
        engine.render(spec_for("tiny-sdxl"), Upscale(wide, scale=4))
    assert png(
        engine.render(spec_for("tiny-sdxl"), Upscale(to_png(_photo(1456 // 4, 816 // 4)), scale=4)).images[0]
    ).size == (
        1456,
        816,
    )
