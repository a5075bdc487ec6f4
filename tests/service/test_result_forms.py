"""Choosing what to upload for a result: the PNG when it fits, else lossless WebP, else JPEG plus the full PNG."""

from __future__ import annotations

import io
import random

import pytest
from PIL import Image

from impasto.bots.service.result_forms import (
    Limits,
    NothingFits,
    choose,
    discord_limits,
    forms,
    telegram_limits,
)


def png_of(side: int, *, noise: bool) -> bytes:
    """Noise compresses badly (the tiny models paint noise: a worst case); a gradient compresses well."""
    if noise:
        rng = random.Random(side)
        image = Image.frombytes("RGB", (side, side), bytes(rng.getrandbits(8) for _ in range(side * side * 3)))
    else:
        image = Image.linear_gradient("L").resize((side, side)).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


NOISE = png_of(256, noise=True)  # ~197 kB of PNG


def test_the_png_itself_when_it_fits() -> None:
    choice = choose(NOISE, Limits(inline_bytes=len(NOISE)))
    assert choice.view.data == NOISE
    assert choice.is_full_png
    assert choice.caption_line() == ""


def test_a_smaller_form_with_the_png_as_a_document_where_one_fits() -> None:
    choice = choose(NOISE, Limits(inline_bytes=len(NOISE) // 2, document_bytes=len(NOISE)))
    assert choice.view.ext == "jpg"
    assert len(choice.view.data) <= len(NOISE) // 2
    assert choice.document == NOISE  # byte-identical to the stored PNG
    assert "256×256 PNG" in choice.caption_line()
    assert "sent as a file" in choice.caption_line()
    with Image.open(io.BytesIO(choice.view.data)) as shown:
        assert shown.format == "JPEG"


def test_a_download_link_or_a_note_when_no_document_fits() -> None:
    limits = Limits(inline_bytes=len(NOISE) // 2)
    linked = choose(NOISE, limits, download_url="https://impasto.example/d/abc")
    assert linked.document is None
    assert linked.caption_line().endswith("download: https://impasto.example/d/abc")
    alone = choose(NOISE, limits)
    assert "the full PNG is kept" in alone.caption_line()


def test_lossless_webp_is_tried_before_jpeg() -> None:
    gradient = png_of(512, noise=False)
    webp = next(f for f in forms(gradient) if f.ext == "webp")
    if len(webp.data) >= len(gradient):
        pytest.skip("this Pillow's WebP is not smaller than its PNG for a gradient")
    choice = choose(gradient, Limits(inline_bytes=len(gradient) - 1))
    assert choice.view.label == "lossless WebP"
    with Image.open(io.BytesIO(choice.view.data)) as shown, Image.open(io.BytesIO(gradient)) as original:
        assert shown.convert("RGB").tobytes() == original.convert("RGB").tobytes()  # the same pixels


def test_after_a_refusal_the_next_form_is_strictly_smaller() -> None:
    limits = Limits(inline_bytes=10 * 1024 * 1024)
    first = choose(NOISE, limits)
    assert first.is_full_png
    second = choose(NOISE, limits, below=len(first.view.data))
    assert len(second.view.data) < len(first.view.data)
    third = choose(NOISE, limits, below=len(second.view.data))
    assert len(third.view.data) < len(second.view.data)


def test_shrinks_the_side_when_even_jpeg_does_not_fit() -> None:
    choice = choose(NOISE, Limits(inline_bytes=8000))
    assert len(choice.view.data) <= 8000
    assert choice.view.width < 256


def test_nothing_fits_a_tiny_limit() -> None:
    with pytest.raises(NothingFits):
        choose(NOISE, Limits(inline_bytes=100))


def test_platform_limits() -> None:
    assert discord_limits(25 * 1024 * 1024).inline_bytes == 25 * 1024 * 1024  # the interaction says
    assert discord_limits(None, premium_tier=2).inline_bytes == 50 * 1024 * 1024
    assert discord_limits(None).inline_bytes == 10 * 1024 * 1024  # DMs, unboosted servers
    assert telegram_limits().document_bytes == 50 * 1000 * 1000
    assert telegram_limits(self_hosted=True).document_bytes == 2000 * 1000 * 1000


def test_lossless_webp_is_not_encoded_when_it_cannot_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    from impasto.bots.service import result_forms

    encoded: list[str] = []
    real = result_forms._encode

    def counting(image: Image.Image, fmt: str, **options: object) -> result_forms.Form:
        encoded.append(fmt)
        return real(image, fmt, **options)

    monkeypatch.setattr(result_forms, "_encode", counting)
    choose(NOISE, Limits(inline_bytes=len(NOISE) // 3))  # under half the PNG: no lossless WebP gets there
    assert "WEBP" not in encoded
    assert encoded[0] == "JPEG"
    encoded.clear()
    choose(NOISE, Limits(inline_bytes=len(NOISE) - 1))  # within reach: tried before any JPEG
    assert encoded[0] == "WEBP"
