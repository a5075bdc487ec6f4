"""Image references through the tiny IP-Adapter: --iw, --sref/--sw on the style layers only, /blend's N embeddings,
and the latent-average path (and the refusal of --sref) for a model without an adapter."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch
from engine_helpers import png, spec_for, to_png
from PIL import Image

from impasto.engine.engine import Engine
from impasto.engine.errors import InvalidInput
from impasto.engine.images import png_text
from impasto.engine.references import image_prompt_scale, style_scale
from impasto.engine.registry import Registry
from impasto.engine.spec import Progress

pytestmark = pytest.mark.slow

RED = to_png(Image.new("RGB", (64, 64), (220, 30, 30)))
BLUE = to_png(Image.new("RGB", (48, 80), (30, 30, 220)))
GREEN = to_png(Image.new("RGB", (64, 64), (30, 200, 30)))
#: InstantStyle's style layer on the tiny UNets: the middle transformer of the first up block with attention.
STYLE_LAYER = "up_blocks.0.attentions.1."


def scales_during(engine: Engine, model: str, render: Any) -> dict[str, list[float]]:
    """Each IP-Adapter processor's scales (content slot, style slot), read at the first denoising step."""
    seen: list[dict[str, list[float]]] = []

    def progress(_: Progress) -> None:
        if not seen:
            unet = engine.models.get(model).pipe.unet
            seen.append({name: list(p.scale) for name, p in unet.attn_processors.items() if hasattr(p, "scale")})

    render(progress)
    assert seen, "no denoising step ran"
    return seen[0]


@pytest.fixture
def projection_inputs(engine: Engine) -> Iterator[list[list[torch.Tensor]]]:
    """What the adapter's image projection receives: one list of per-slot embeddings per UNet call."""
    calls: list[list[torch.Tensor]] = []
    references = engine.models.get("tiny-sd15").references
    assert references is not None
    handle = references.projection.register_forward_hook(lambda _m, args, _out: calls.append(list(args[0])))
    yield calls
    handle.remove()


@pytest.mark.parametrize("model", ["tiny-sd15", "tiny-sdxl"])
def test_sref_and_sw_scale_the_style_layer_only(engine: Engine, model: str) -> None:
    spec = spec_for(model, style_references=(BLUE,), style_weight=400)
    scales = scales_during(engine, model, lambda p: engine.imagine(spec, p))
    assert scales, "the adapter was not on during the render"
    for name, (content, style) in scales.items():
        assert content == 0.0  # no image prompt: the content slot is off
        expected = style_scale(400) if name.startswith(STYLE_LAYER) else 0.0
        assert style == pytest.approx(expected), name
    assert any(name.startswith(STYLE_LAYER) for name in scales)
    assert style_scale(400) == pytest.approx(1 + 300 / 900)
    unet = engine.models.get(model).pipe.unet  # switched off after the render
    assert unet.encoder_hid_proj is None
    assert not any(hasattr(p, "scale") for p in unet.attn_processors.values())


def test_iw_is_the_image_prompt_scale_on_every_layer(engine: Engine) -> None:
    spec = spec_for("tiny-sd15", image_prompts=(RED,), image_weight=2.5, style_references=(BLUE,), style_weight=100)
    scales = scales_during(engine, "tiny-sd15", lambda p: engine.imagine(spec, p))
    assert {content for content, _ in scales.values()} == {image_prompt_scale(2.5)} == {2.5}
    assert {style for name, (_, style) in scales.items() if name.startswith(STYLE_LAYER)} == {1.0}
    assert {style for name, (_, style) in scales.items() if not name.startswith(STYLE_LAYER)} == {0.0}


def test_blend_passes_one_embedding_per_image(engine: Engine, projection_inputs: list[list[torch.Tensor]]) -> None:
    result = engine.blend(spec_for("tiny-sd15", batch_size=2), [RED, BLUE, GREEN])
    assert projection_inputs, "the blend did not go through the adapter"
    content, style = projection_inputs[0]
    # Classifier-free guidance: the zero (unconditional) embeddings, then the images', for each of the 2 pictures.
    assert content.shape[:2] == (2 * 2, 3)
    assert torch.count_nonzero(content[:2]) == 0
    assert torch.count_nonzero(content[2:]) > 0
    assert style.shape[:2] == (2 * 2, 1)  # the style slot: one zero embedding at scale 0
    assert "Denoising strength" not in png_text(result.images[0])["parameters"]  # painted from noise, not img2img


def test_image_prompt_goes_through_the_adapter(engine: Engine, projection_inputs: list[list[torch.Tensor]]) -> None:
    engine.imagine(spec_for("tiny-sd15", image_prompts=(RED, BLUE), batch_size=1))
    content, _ = projection_inputs[0]
    assert content.shape[:2] == (2, 2)


def test_references_change_the_picture(engine: Engine) -> None:
    base = spec_for("tiny-sd15", batch_size=1)
    plain = png(engine.imagine(base).images[0])
    styled = png(engine.imagine(replace(base, style_references=(RED,), style_weight=1000)).images[0])
    again = png(engine.imagine(base).images[0])
    assert plain.tobytes() == again.tobytes()  # the adapter switched off leaves the model as it was
    assert plain.tobytes() != styled.tobytes()


@pytest.fixture(scope="module")
def bare(registry: Registry, model_cache: Path) -> Engine:
    """The tiny SD 1.5 model registered without its adapter."""
    entry = replace(registry.get("tiny-sd15"), name="bare-sd15", ip_adapter=None)
    return Engine(Registry({"bare-sd15": entry}, "bare-sd15"), device="cpu", cache_dir=model_cache)


def test_without_an_adapter_blend_and_image_prompts_average_latents(bare: Engine) -> None:
    blended = bare.blend(spec_for("bare-sd15", batch_size=1), [RED, BLUE])
    assert "Denoising strength: 0.8" in png_text(blended.images[0])["parameters"]
    prompted = bare.imagine(spec_for("bare-sd15", image_prompts=(RED,), batch_size=1))
    assert "Denoising strength: 0.75" in png_text(prompted.images[0])["parameters"]
    assert bare.models.get("bare-sd15").references is None


def test_without_an_adapter_sref_is_refused(bare: Engine) -> None:
    with pytest.raises(InvalidInput, match="no IP-Adapter"):
        bare.imagine(spec_for("bare-sd15", style_references=(RED,)))


def test_style_scale_mapping() -> None:
    assert [style_scale(sw) for sw in (0, 50, 100, 550, 1000)] == pytest.approx([0, 0.5, 1.0, 1.5, 2.0])
    assert style_scale(-3) == 0.0
    assert image_prompt_scale(0) == 0.0
