"""Cheap progress previews: a linear latent→RGB projection at latent resolution (no extra model).

Factors from ComfyUI ``comfy/latent_formats.py``: ``rgb = latent @ F + b`` in [-1, 1].
Cost: 12 multiply-adds per latent pixel.
"""

from __future__ import annotations

import torch
from PIL import Image

from impasto.engine.grid import compose_grid
from impasto.engine.registry import Family

_FACTORS: dict[Family, tuple[list[list[float]], list[float]]] = {
    "sd15": (
        [[0.3512, 0.2297, 0.3227], [0.3250, 0.4974, 0.2350], [-0.2829, 0.1762, 0.2721], [-0.2120, -0.2616, -0.7177]],
        [0.0, 0.0, 0.0],
    ),
    "sdxl": (
        [[0.3651, 0.4232, 0.4341], [-0.2533, -0.0042, 0.1068], [0.1076, 0.1111, -0.0362], [-0.3165, -0.2492, -0.2188]],
        [0.1084, -0.0175, -0.0011],
    ),
}


def latent_preview(latents: torch.Tensor, family: Family) -> Image.Image:
    """The batch ``[B, 4, h, w]`` as one latent-sized RGB picture (a 2×2 grid for 4 images)."""
    factors, bias = _FACTORS[family]
    matrix = torch.tensor(factors, dtype=torch.float32)
    offset = torch.tensor(bias, dtype=torch.float32)
    lat = latents[:4, :4].detach().to("cpu", torch.float32)
    rgb = torch.einsum("bchw,cr->bhwr", lat, matrix) + offset
    pixels = ((rgb.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
    return compose_grid([Image.fromarray(p, "RGB") for p in pixels])
