"""Super-resolution models for Upscale (Subtle/Creative): loaded with spandrel, run in tiles so any size fits.

spandrel recognises the architecture (ESRGAN, Real-ESRGAN, SwinIR, HAT, Compact, …) from the weights alone, so the
operator only names a file. We read the file ourselves and hand spandrel the tensors: ``.safetensors`` with
safetensors, ``.pth`` with ``torch.load(weights_only=True)`` (tensors only; a pickle that would run code is
refused). Other pickle suffixes are refused by name.

spandrel runs a model on one whole image and leaves tiling to the caller, so the tiler is ours: each tile is read
with a margin of context around it and only its centre is kept. A convolutional SR model sees a bounded
neighbourhood, so with a margin wider than that the tiles join without seams; memory is then bounded by the tile
size, not the image size (the result is written straight into a uint8 array).

``builtin:tiny-sr`` is a Real-ESRGAN Compact network at a tiny width with seeded random weights, saved as
safetensors under the cache dir and loaded back through the same path as an operator's file.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from impasto.engine.errors import InvalidInput, UnsafeCheckpoint
from impasto.engine.registry import TINY_UPSCALER

SR_SUFFIXES = (".safetensors", ".pth")
_TINY_SEED = 20240602
_TINY_VERSION = 1  # bump when tiny_sr_state_dict changes: the cached file is then rebuilt
#: Input pixels per tile side and the context margin read around each tile (both in input pixels).
TILE = 256
MARGIN = 16


@dataclass
class SuperResolution:
    """A loaded SR model: ``upscale`` any image by 2 or 4, tile by tile."""

    source: str
    descriptor: Any  # spandrel.ImageModelDescriptor
    device: torch.device
    dtype: torch.dtype

    @property
    def native_scale(self) -> int:
        return int(self.descriptor.scale)

    @property
    def name(self) -> str:
        return f"{self.descriptor.architecture.name} x{self.native_scale}"

    def upscale(self, image: Image.Image, scale: int, *, tile: int = TILE, margin: int = MARGIN) -> Image.Image:
        """``image`` × ``scale``: as many passes of the model as it takes (a 2× model twice for 4×), then a Lanczos
        step down when the model overshoots (a 4× model for 2×, as A1111 does)."""
        target = (image.width * scale, image.height * scale)
        current, factor = image.convert("RGB"), 1
        while factor < scale:
            current = self._pass(current, tile, margin)
            factor *= self.native_scale
        if current.size != target:
            current = current.resize(target, Image.Resampling.LANCZOS)
        return current

    @torch.inference_mode()
    def _pass(self, image: Image.Image, tile: int, margin: int) -> Image.Image:
        pixels = np.asarray(image, dtype=np.uint8)
        scale = self.native_scale

        def run(crop: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
            tensor = torch.from_numpy(crop).permute(2, 0, 1).unsqueeze(0).to(self.device, self.dtype) / 255.0
            out = (self.descriptor(tensor)[0].permute(1, 2, 0).float() * 255.0).round().clamp(0, 255)
            result: np.ndarray[Any, Any] = out.to(torch.uint8).cpu().numpy()
            return result

        return Image.fromarray(tiled(pixels, run, scale, tile=tile, margin=margin))


def tile_boxes(width: int, height: int, tile: int) -> list[tuple[int, int, int, int]]:
    """The (left, top, right, bottom) boxes of a grid of tiles covering width × height."""
    return [
        (x, y, min(x + tile, width), min(y + tile, height))
        for y in range(0, height, tile)
        for x in range(0, width, tile)
    ]


def tiled(
    pixels: np.ndarray[Any, Any],
    run: Callable[[np.ndarray[Any, Any]], np.ndarray[Any, Any]],
    scale: int,
    *,
    tile: int,
    margin: int,
) -> np.ndarray[Any, Any]:
    """Apply ``run`` (H×W×3 uint8 → sH×sW×3 uint8) tile by tile with ``margin`` pixels of context around each."""
    height, width = pixels.shape[:2]
    out = np.empty((height * scale, width * scale, 3), dtype=np.uint8)
    for left, top, right, bottom in tile_boxes(width, height, tile):
        x0, y0 = max(0, left - margin), max(0, top - margin)
        x1, y1 = min(width, right + margin), min(height, bottom + margin)
        result = run(np.ascontiguousarray(pixels[y0:y1, x0:x1]))
        keep = result[(top - y0) * scale : (bottom - y0) * scale, (left - x0) * scale : (right - x0) * scale]
        out[top * scale : bottom * scale, left * scale : right * scale] = keep
    return out


# --- Loading ---------------------------------------------------------------------------------------------------------


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors only: safetensors, or a ``.pth`` read with ``weights_only=True``. Other suffixes are refused."""
    suffix = path.suffix.lower()
    if suffix not in SR_SUFFIXES:
        raise UnsafeCheckpoint(str(path))
    if not path.is_file():
        raise InvalidInput(f"upscaler weights {path} do not exist")
    if suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path), device="cpu")
    try:
        loaded = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch's UnpicklingError for anything but tensors and plain containers
        raise UnsafeCheckpoint(str(path)) from exc
    if isinstance(loaded, dict) and "params_ema" in loaded:  # Real-ESRGAN's own releases nest the weights
        loaded = loaded["params_ema"]
    elif isinstance(loaded, dict) and "params" in loaded:
        loaded = loaded["params"]
    if not isinstance(loaded, dict):
        raise InvalidInput(f"upscaler weights {path} hold no state dict")
    return loaded


def load_upscaler(source: str, cache_dir: Path, device: torch.device, dtype: torch.dtype) -> SuperResolution:
    """The SR model named by a registry ``upscaler`` (a file, or ``builtin:tiny-sr``), on ``device``."""
    import spandrel

    path = ensure_tiny_sr(cache_dir) if source == TINY_UPSCALER else Path(source).expanduser()
    state = spandrel.canonicalize_state_dict(load_state_dict(path))
    try:
        descriptor = spandrel.ModelLoader().load_from_state_dict(state)
    except spandrel.UnsupportedModelError as exc:
        raise InvalidInput(f"upscaler {source}: spandrel does not recognise this architecture") from exc
    if not isinstance(descriptor, spandrel.ImageModelDescriptor) or descriptor.scale < 2:
        raise InvalidInput(f"upscaler {source}: not a super-resolution model (its scale is {descriptor.scale})")
    wanted = dtype if dtype == torch.float32 or _supports(descriptor, dtype) else torch.float32
    descriptor.to(device).eval()
    if wanted != torch.float32:
        descriptor.to(wanted)
    return SuperResolution(source, descriptor, device, wanted)


def _supports(descriptor: Any, dtype: torch.dtype) -> bool:
    if dtype == torch.bfloat16:
        return bool(descriptor.supports_bfloat16)
    return dtype == torch.float16 and bool(descriptor.supports_half)


def tiny_sr_state_dict(scale: int = 4) -> dict[str, torch.Tensor]:
    """A Real-ESRGAN Compact network (8 features, 2 body convs) with seeded random weights (PyTorch's own init).

    The network adds its output to a nearest-neighbour upscale, so its pictures are the input, blocky and noisy."""
    from spandrel.architectures.Compact import Compact

    torch.manual_seed(_TINY_SEED + scale)
    model = Compact(num_in_ch=3, num_out_ch=3, num_feat=8, num_conv=2, upscale=scale, act_type="prelu")
    return {k: v.contiguous() for k, v in model.state_dict().items()}


def ensure_tiny_sr(cache_dir: Path, scale: int = 4) -> Path:
    path = cache_dir / f"tiny-sr-v{_TINY_VERSION}-x{scale}.safetensors"
    if not path.is_file():
        from safetensors.torch import save_file

        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".building")
        save_file(tiny_sr_state_dict(scale), str(tmp))
        tmp.rename(path)
    return path


# --- Creative: img2img over overlapping tiles ------------------------------------------------------------------------


@dataclass(frozen=True)
class RefineTile:
    """One tile of a tiled img2img: its box in the big image and the feathering weights it is blended with."""

    box: tuple[int, int, int, int]
    weight: np.ndarray[Any, Any]  # H×W×1 float32


def refine_tiles(width: int, height: int, tile: int, overlap: int) -> list[RefineTile]:
    """Tiles of ``tile`` px (multiples of 8) overlapping by ``overlap`` px, each fading in over the overlap where it
    has a neighbour, so that blended together they leave no seam."""
    tile_w, tile_h = min(tile, width), min(tile, height)
    xs = _starts(width, tile_w, overlap)
    ys = _starts(height, tile_h, overlap)
    tiles: list[RefineTile] = []
    for y in ys:
        for x in xs:
            ramp_x = _ramp(tile_w, overlap, x > 0, x + tile_w < width)
            ramp_y = _ramp(tile_h, overlap, y > 0, y + tile_h < height)
            weight = (ramp_y[:, None] * ramp_x[None, :])[:, :, None].astype(np.float32)
            tiles.append(RefineTile((x, y, x + tile_w, y + tile_h), weight))
    return tiles


def _starts(length: int, tile: int, overlap: int) -> list[int]:
    if tile >= length:
        return [0]
    count = math.ceil((length - overlap) / (tile - overlap))
    step = (length - tile) / (count - 1)
    return [round(i * step / 8) * 8 if i < count - 1 else length - tile for i in range(count)]


def _ramp(size: int, overlap: int, fade_in: bool, fade_out: bool) -> np.ndarray[Any, Any]:
    ramp = np.ones(size, dtype=np.float32)
    edge = np.linspace(0.0, 1.0, overlap + 2, dtype=np.float32)[1:-1]
    if fade_in:
        ramp[:overlap] = edge
    if fade_out:
        ramp[-overlap:] = edge[::-1]
    return ramp


def blend_tiles(size: tuple[int, int], tiles: list[RefineTile], images: list[Image.Image]) -> Image.Image:
    """The weighted average of the refined tiles (weights sum to > 0 everywhere: every pixel is in a tile)."""
    width, height = size
    total = np.zeros((height, width, 3), dtype=np.float32)
    weights = np.zeros((height, width, 1), dtype=np.float32)
    for tile, image in zip(tiles, images, strict=True):
        left, top, right, bottom = tile.box
        total[top:bottom, left:right] += np.asarray(image.convert("RGB"), dtype=np.float32) * tile.weight
        weights[top:bottom, left:right] += tile.weight
    return Image.fromarray(np.clip(np.round(total / weights), 0, 255).astype(np.uint8))
