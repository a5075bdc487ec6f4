"""Helpers for the engine tests (a plain module: the tests folder has no packages)."""

from __future__ import annotations

import io

from PIL import Image

from impasto.engine.spec import RenderSpec


def spec_for(model: str, **kw: object) -> RenderSpec:
    base: dict[str, object] = {
        "model": model,
        "prompts": (("a lighthouse at dusk", 1.0),),
        "width": 64,
        "height": 64,
        "seed": 42,
        "steps": 2,
    }
    base.update(kw)
    return RenderSpec(**base)  # type: ignore[arg-type]


def png(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def to_png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()
