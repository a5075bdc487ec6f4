"""The 2×2 grid: image 1 top-left, 2 top-right, 3 bottom-left, 4 bottom-right."""

from __future__ import annotations

from PIL import Image


def compose_grid(images: list[Image.Image]) -> Image.Image:
    """Tile up to 4 same-sized images into a 2×2 grid (fewer than 4: the missing cells stay black)."""
    if not 1 <= len(images) <= 4:
        raise ValueError(f"a grid holds 1 to 4 images, not {len(images)}")
    w, h = images[0].size
    cols = 1 if len(images) == 1 else 2
    rows = 1 if len(images) <= 2 else 2
    grid = Image.new("RGB", (w * cols, h * rows))
    for i, image in enumerate(images):
        if image.size != (w, h):
            raise ValueError(f"grid images must share one size: {image.size} != {(w, h)}")
        grid.paste(image.convert("RGB"), ((i % 2) * w, (i // 2) * h))
    return grid


def split_grid(grid: Image.Image, count: int = 4) -> list[Image.Image]:
    """The single images of a 2×2 grid, in order 1–4 (U1–U4: no re-render)."""
    if count not in (1, 2, 3, 4):
        raise ValueError(f"a grid holds 1 to 4 images, not {count}")
    cols = 1 if count == 1 else 2
    rows = 1 if count <= 2 else 2
    w, h = grid.width // cols, grid.height // rows
    return [grid.crop(((i % 2) * w, (i // 2) * h, (i % 2) * w + w, (i // 2) * h + h)) for i in range(count)]
