"""Width × height: multiples of 64, pixels within 10% of native, the closest ratio."""

from __future__ import annotations

import math

import pytest
from language_helpers import one

from impasto.bots.language.sizing import dimensions
from impasto.engine.registry import DEFAULT_REGISTRY_PATH, Registry, load_registry

RATIOS = [(w, h) for w in range(1, 17) for h in range(1, 17) if math.gcd(w, h) == 1 and 0.25 <= w / h <= 4]


@pytest.mark.parametrize(
    ("native", "ratio", "expected"),
    [
        (1024, (1, 1), (1024, 1024)),
        (1024, (16, 9), (1344, 768)),  # the SDXL example
        (1024, (9, 16), (768, 1344)),
        (1024, (2, 3), (832, 1280)),
        (1024, (4, 1), (2048, 512)),
        (512, (1, 1), (512, 512)),
        (512, (16, 9), (704, 384)),
        (512, (3, 2), (640, 448)),
        (256, (1, 1), (256, 256)),
        (256, (16, 9), (320, 192)),
        (256, (4, 1), (512, 128)),
    ],
)
def test_known_sizes(native: int, ratio: tuple[int, int], expected: tuple[int, int]) -> None:
    assert dimensions(native, *ratio) == expected


@pytest.mark.parametrize("native", [256, 512, 768, 1024, 2048])
def test_every_ratio_obeys_the_rule(native: int) -> None:
    target = native * native
    valid = [
        (w, h)
        for w in range(64, 4 * native + 64, 64)
        for h in range(64, 4 * native + 64, 64)
        if abs(w * h - target) <= 0.1 * target
    ]
    for ratio in RATIOS:
        width, height = dimensions(native, *ratio)
        assert (width, height) in valid  # multiples of 64, pixels within 10% of native
        # No valid pair is closer in ratio.
        wanted = math.log(ratio[0] / ratio[1])
        best = min(abs(math.log(w / h) - wanted) for w, h in valid)
        assert abs(math.log(width / height) - wanted) <= best + 1e-12


def test_orientation_is_symmetric() -> None:
    for ratio in RATIOS:
        assert dimensions(1024, *ratio) == tuple(reversed(dimensions(1024, ratio[1], ratio[0])))


def test_size_follows_the_model(registry: Registry) -> None:
    assert (one("a cat --ar 16:9 --v 5", registry).width, one("a cat --ar 16:9 --v 5", registry).height) == (704, 384)
    job = one("a cat --ar 16:9 --niji", registry)
    assert (job.width, job.height) == (1344, 768)


def test_tiny_default_model() -> None:
    tiny = load_registry(DEFAULT_REGISTRY_PATH, "tiny-sd15")
    job = one("a cat --ar 16:9", tiny)
    assert (job.model, job.width, job.height) == ("tiny-sd15", 320, 192)
