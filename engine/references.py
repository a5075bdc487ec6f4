"""Image references through an IP-Adapter: image prompts (``--iw``), ``/blend`` and style references (``--sref``).

diffusers' ``load_ip_adapter`` does the loading. The adapter is loaded twice into the UNet, as two slots of the same
weights: slot 0 carries the content references (image prompts, the blended images) at one scale on every
cross-attention layer, slot 1 the style references on the style layers only, as InstantStyle does (the middle
transformer of the first up block that has attention: ``up_blocks.0.attentions.1`` on SDXL, found from the UNet so
the tiny models have theirs too). Two slots let a prompt carry both kinds at their own weights.

A UNet with an IP-Adapter needs image embeddings on every call, so the adapter is switched on for the renders that
use it and off again after (its attention processors and image projection are kept, not reloaded): a render
without references runs the plain UNet. The engine encodes the images itself and hands the pipeline
``ip_adapter_image_embeds``: the img2img/inpaint views of the pipeline need no image encoder of their own.

``builtin:tiny-ip-adapter``: a tiny CLIP vision encoder and adapter weights shaped for the tiny model of the family,
seeded random weights, saved as safetensors and loaded back through ``load_ip_adapter`` like a real one.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from impasto.engine.errors import InvalidInput
from impasto.engine.registry import TINY_IP_ADAPTER, AdapterEntry, Family
from impasto.engine.tiny import ensure_tiny_model

_TINY_VERSION = 1
_TINY_SEED = 20240605
_TINY_WEIGHTS = "ip-adapter.safetensors"
CONTENT, STYLE = 0, 1  # the adapter slots


def image_prompt_scale(image_weight: float) -> float:
    """``--iw`` (0–3, default 1) is the content slot's scale as it is: 1 is the IP-Adapter authors' default."""
    return max(0.0, image_weight)


def style_scale(style_weight: int) -> float:
    """``--sw`` (0–1000, default 100) → the style slot's scale: 0 → 0, 100 → 1 (InstantStyle's), 1000 → 2, linear
    in between; past 1 the style layer starts to carry the reference's content too, so the top end rises slowly."""
    sw = min(max(style_weight, 0), 1000)
    return sw / 100 if sw <= 100 else 1.0 + (sw - 100) / 900


def style_blocks(unet: Any, scale: float) -> dict[str, Any]:
    """The InstantStyle scale config for ``set_ip_adapter_scale``: ``scale`` on the middle transformer of the first
    up block with attention, 0 everywhere else."""
    for index, block in enumerate(unet.up_blocks):
        attentions = getattr(block, "attentions", None)
        if attentions:
            layers = [0.0] * len(attentions)
            layers[len(attentions) // 2] = scale
            return {"up": {f"block_{index}": layers}}
    raise InvalidInput("this UNet has no attention in its up blocks: style references cannot be applied")


@dataclass
class References:
    """The adapter of one resident model: its attention processors and image projection, switched on per render."""

    adapter: AdapterEntry
    ip_processors: dict[str, Any]
    plain_processors: dict[str, Any]
    projection: Any

    def switch(self, pipe: Any, on: bool) -> None:
        unet = pipe.unet
        unet.set_attn_processor(dict(self.ip_processors if on else self.plain_processors))
        unet.encoder_hid_proj = self.projection if on else None
        # What diffusers' own unload_ip_adapter does: the UNet reads this to ask for image embeddings.
        unet.config.encoder_hid_dim_type = "ip_image_proj" if on else None

    @torch.no_grad()
    def embed(self, pipe: Any, images: Sequence[Image.Image]) -> torch.Tensor:
        """One CLIP image embedding per image, ``(len(images), dim)``."""
        encoder = pipe.image_encoder
        pixels = pipe.feature_extractor(images=[i.convert("RGB") for i in images], return_tensors="pt").pixel_values
        return encoder(pixels.to(encoder.device, encoder.dtype)).image_embeds  # type: ignore[no-any-return]

    @contextlib.contextmanager
    def active(
        self,
        pipe: Any,
        *,
        content: Sequence[Image.Image] = (),
        content_scale: float = 1.0,
        style: Sequence[Image.Image] = (),
        style_weight: int = 100,
        guided: bool = True,
    ) -> Iterator[dict[str, Any]]:
        """The adapter on, scaled for this render; yields the pipeline call's ``ip_adapter_image_embeds``.

        An empty slot gets one zero embedding at scale 0. ``guided``: classifier-free guidance is on, so each slot
        carries a zero (unconditional) embedding first, as diffusers' ``encode_image`` makes for its negative.
        """
        slots = []
        for images in (content, style):
            embeds = self.embed(pipe, images) if images else None
            if embeds is None:
                dim = pipe.image_encoder.config.projection_dim
                embeds = torch.zeros(1, dim, device=pipe.image_encoder.device, dtype=pipe.image_encoder.dtype)
            embeds = embeds.unsqueeze(0)  # (1, images, dim): several images of a slot are one sequence of tokens
            slots.append(torch.cat([torch.zeros_like(embeds), embeds]) if guided else embeds)
        unet = pipe.unet
        self.switch(pipe, True)
        try:
            scales = [
                image_prompt_scale(content_scale) if content else 0.0,
                style_blocks(unet, style_scale(style_weight) if style else 0.0),
            ]
            pipe.set_ip_adapter_scale(scales)
            yield {"ip_adapter_image_embeds": slots}
        finally:
            self.switch(pipe, False)


def attach(pipe: Any, adapter: AdapterEntry, family: Family, cache_dir: Path) -> References:
    """Load ``adapter`` into ``pipe`` (two slots of the same weights) and leave it **on**: the caller moves the
    pipeline to its device (the adapter's modules with it), then switches it off."""
    plain = dict(pipe.unet.attn_processors)
    source = adapter.source
    if source == TINY_IP_ADAPTER:
        source = str(ensure_tiny_ip_adapter(family, cache_dir))
    from impasto.engine.loading import _quiet_loading

    local = Path(source).expanduser().is_dir()
    try:
        with _quiet_loading():
            pipe.load_ip_adapter(
                str(Path(source).expanduser()) if local else source,
                subfolder=adapter.subfolder,
                weight_name=[adapter.weights, adapter.weights],
                image_encoder_folder=adapter.encoder,
                local_files_only=local,
            )
    except (OSError, ValueError, KeyError) as exc:
        raise InvalidInput(f"IP-Adapter {adapter.source}: cannot load it: {exc}") from exc
    unet = pipe.unet
    return References(adapter, dict(unet.attn_processors), plain, unet.encoder_hid_proj)


def ensure_tiny_ip_adapter(family: Family, cache_dir: Path) -> Path:
    """The tiny adapter's folder for the tiny model of ``family``, built and saved on first use."""
    folder = cache_dir / f"tiny-ip-adapter-{family}"
    marker = folder / "impasto-tiny.json"
    if marker.exists() and json.loads(marker.read_text()).get("version") == _TINY_VERSION:
        return folder
    import diffusers
    from safetensors.torch import save_file
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    from impasto.engine.loading import _quiet_loading

    lib: Any = diffusers
    with _quiet_loading():
        unet = lib.UNet2DConditionModel.from_pretrained(ensure_tiny_model(family, cache_dir) / "unet")
    torch.manual_seed(_TINY_SEED)
    image_dim, cross = 32, unet.config.cross_attention_dim
    vision = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=37,
        num_attention_heads=4,
        num_hidden_layers=2,
        image_size=32,
        patch_size=8,
        projection_dim=image_dim,
    )
    # IP-Adapter's file layout (diffusers' _convert_ip_adapter_*): the image projection to 4 tokens, then to_k_ip /
    # to_v_ip for each cross-attention processor, numbered 1, 3, 5 … in the UNet's processor order.
    tensors = {
        "image_proj.proj.weight": torch.randn(4 * cross, image_dim) * 0.2,
        "image_proj.proj.bias": torch.zeros(4 * cross),
        "image_proj.norm.weight": torch.ones(cross),
        "image_proj.norm.bias": torch.zeros(cross),
    }
    key = 1
    for name, module in unet.named_modules():
        if name.endswith("attn2"):
            hidden = module.to_q.out_features
            tensors[f"ip_adapter.{key}.to_k_ip.weight"] = torch.randn(hidden, cross) * 0.2
            tensors[f"ip_adapter.{key}.to_v_ip.weight"] = torch.randn(hidden, cross) * 0.2
            key += 2
    tmp = cache_dir / f".tiny-ip-adapter-{family}.building"
    tmp.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp / _TINY_WEIGHTS))
    with _quiet_loading():
        CLIPVisionModelWithProjection(vision).save_pretrained(tmp / "image_encoder", safe_serialization=True)
    (tmp / "impasto-tiny.json").write_text(json.dumps({"version": _TINY_VERSION, "seed": _TINY_SEED}))
    if folder.exists():
        import shutil

        shutil.rmtree(folder)
    tmp.rename(folder)
    return folder
