"""Masks from the editor: normalised to black and white, size-checked, bombs and junk refused."""

from __future__ import annotations

import base64
import io
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from impasto.bots.web.masks import MaskError, normalise_mask, png_from_data_url, store_mask
from impasto.storage.images import ImageStore


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def test_opaque_black_and_white_mask_is_kept() -> None:
    image = Image.new("RGBA", (64, 32), (0, 0, 0, 255))
    image.paste((255, 255, 255, 255), (10, 5, 20, 15))
    with Image.open(io.BytesIO(normalise_mask(png(image), (64, 32)))) as mask:
        assert mask.mode == "L"
        assert mask.getbbox() == (10, 5, 20, 15)
        assert {i for i, n in enumerate(mask.histogram()) if n} == {0, 255}


def test_transparent_canvas_with_white_strokes_reads_the_same() -> None:
    image = Image.new("RGBA", (16, 16), (0, 0, 0, 0))
    image.paste((255, 255, 255, 255), (0, 0, 4, 4))
    with Image.open(io.BytesIO(normalise_mask(png(image), (16, 16)))) as mask:
        assert mask.getbbox() == (0, 0, 4, 4)


def test_refusals() -> None:
    with pytest.raises(MaskError, match="empty"):
        normalise_mask(png(Image.new("L", (8, 8), 0)), (8, 8))
    with pytest.raises(MaskError, match="8×8 but the image is 16×16"):
        normalise_mask(png(Image.new("L", (8, 8), 255)), (16, 16))
    with pytest.raises(MaskError, match="PNG"):
        normalise_mask(b"GIF89a-not-really", (8, 8))
    with pytest.raises(MaskError, match="PNG drawn"):
        png_from_data_url("data:image/svg+xml;base64,PHN2Zz4=")
    with pytest.raises(MaskError, match="base64"):
        png_from_data_url("data:image/png;base64,@@@")


def test_a_decompression_bomb_is_refused_from_its_header() -> None:
    # A PNG header claiming 100000×100000 pixels with almost no data: refused before decoding.
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    bomb = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 1000))
        + chunk(b"IEND", b"")
    )
    with pytest.raises(MaskError, match="too many pixels"):
        normalise_mask(bomb, (100_000, 100_000))


def test_store_mask_puts_a_png_in_the_store(tmp_path: Path) -> None:
    store = ImageStore(tmp_path)
    image = Image.new("L", (8, 8), 0)
    image.paste(255, (0, 0, 2, 2))
    url = "data:image/png;base64," + base64.b64encode(png(image)).decode()
    key = store_mask(store, url, (8, 8))
    assert key.endswith(".png")
    with Image.open(store.path(key)) as mask:
        assert mask.getbbox() == (0, 0, 2, 2)
