"""Sizes of a large result in each form the delivery core may send (prints a table; not a test).

    .venv/bin/python tests/service/bench_result_forms.py [SIDE ...]

Two pictures per side: random noise, which is what the built-in tiny models paint (the worst case for every codec),
and a smooth picture (a radial gradient with mild grain), nearer to what a real model paints.
"""

from __future__ import annotations

import io
import sys
import time

import numpy as np
from PIL import Image

from impasto.bots.service.result_forms import choose, discord_limits, forms


def pictures(side: int) -> dict[str, bytes]:
    rng = np.random.default_rng(side)
    noise = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
    y, x = np.mgrid[0:side, 0:side] / side
    base = np.stack([x, y, 1 - (x - 0.5) ** 2 - (y - 0.5) ** 2], axis=-1) * 220
    smooth = np.clip(base + rng.normal(0, 3, (side, side, 3)), 0, 255).astype(np.uint8)
    out = {}
    for name, array in (("tiny-model noise", noise), ("smooth picture", smooth)):
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, format="PNG")
        out[name] = buffer.getvalue()
    return out


def main(sides: list[int]) -> None:
    print(f"{'image':<28} {'form':<22} {'size':>10} {'encode s':>9}")
    for side in sides:
        for name, png in pictures(side).items():
            made = forms(png)
            for _ in range(4):  # PNG, lossless WebP, JPEG q92, JPEG q85
                start = time.perf_counter()
                form = next(made)
                took = time.perf_counter() - start
                label = f"{form.label} q{92 if _ == 2 else 85}" if form.ext == "jpg" else form.label
                print(f"{side}² {name:<22} {label:<22} {len(form.data) / 1e6:>8.2f}MB {took:>9.2f}")
    # What delivery spends choosing for Discord's 10 MiB (lossless WebP is skipped where it could not fit).
    print(f"\n{'image':<28} {'chosen for 10 MiB':<22} {'size':>10} {'choose s':>9}")
    for side in sides:
        for name, png in pictures(side).items():
            start = time.perf_counter()
            choice = choose(png, discord_limits(None))
            took = time.perf_counter() - start
            print(f"{side}² {name:<22} {choice.view.label:<22} {len(choice.view.data) / 1e6:>8.2f}MB {took:>9.2f}")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [2048, 4096])
