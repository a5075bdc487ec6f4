"""Upscale time and peak memory: the SR paths (Subtle = SR, Creative = SR + tiled img2img) against the old path
(Lanczos + whole-image img2img), at 2× and 4×, on the built-in tiny models.

    python -m impasto.engine.upscale_bench [--size 1024] [--device cpu] [--limit-gb 10]

Each case runs in its own process so that its peak resident memory (``ru_maxrss``) is its own; the process is
capped at ``--limit-gb`` of address space so that a path that does not fit fails instead of swapping the machine.
Printed: seconds for the upscale call (models already loaded), the process's peak RSS, and the peak over the RSS
it had once the models were loaded (what the upscale itself needed).
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASES = (
    ("sr-subtle", 2),
    ("sr-creative", 2),
    ("old-subtle", 2),
    ("sr-subtle", 4),
    ("sr-creative", 4),
    ("old-subtle", 4),
)


def _case(kind: str, scale: int, size: int, device: str, cache_dir: Path) -> dict[str, object]:
    import numpy as np
    from PIL import Image

    from impasto.engine.engine import Engine
    from impasto.engine.registry import Registry, load_registry
    from impasto.engine.spec import RenderSpec

    registry = load_registry(default="tiny-sdxl")
    name = "tiny-sdxl"
    if kind.startswith("old"):
        name = "tiny-sdxl-old-upscale"
        old = dataclasses.replace(registry.get("tiny-sdxl"), name=name, upscaler=None)
        registry = Registry({**registry.models, name: old}, name)
    engine = Engine(registry, device=device, cache_dir=cache_dir)
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:size, 0:size]
    pixels = np.stack([x * 255 / size, y * 255 / size, rng.integers(0, 255, (size, size))], -1).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    spec = RenderSpec(model=name, prompts=(("a lighthouse at dusk", 1.0),), seed=1, batch_size=1)
    engine.models.get(name)  # loading is not what we measure
    engine._upscaler(name)
    loaded_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    result = engine.upscale(spec, buf.getvalue(), creative=kind.endswith("creative"), scale=scale)
    seconds = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "case": kind,
        "scale": scale,
        "out": f"{result.width}x{result.height}",
        "steps": result.steps,
        "seconds": round(seconds, 2),
        "peak_rss_mb": round(peak_kb / 1024),
        "upscale_peak_mb": round((peak_kb - loaded_kb) / 1024),
    }


def _child(argv: list[str]) -> int:
    kind, scale, size, device, cache_dir, limit_gb = argv
    limit = int(float(limit_gb) * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        row = _case(kind, int(scale), int(size), device, Path(cache_dir))
    except (MemoryError, RuntimeError) as exc:  # torch reports a failed allocation as RuntimeError on the CPU
        row = {"case": kind, "scale": int(scale), "error": f"{type(exc).__name__}: {str(exc)[:120]}"}
    print(json.dumps(row))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--child"]:
        return _child(args[1:])
    parser = argparse.ArgumentParser(prog="python -m impasto.engine.upscale_bench", description=__doc__)
    parser.add_argument("--size", type=int, default=1024, help="side of the square source image (default 1024)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--limit-gb", type=float, default=10.0, help="address-space cap per case (default 10)")
    parser.add_argument("--only", default=None, help="run the cases whose name contains this (e.g. sr-subtle)")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    opts = parser.parse_args(args)
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="impasto-upscale-bench-") as cache:
        print(f"source {opts.size}x{opts.size} on {opts.device}; tiny-sdxl, tiny SR (Compact x4)", flush=True)
        header = f"{'case':<12} {'scale':>5} {'output':>11} {'steps':>5} {'seconds':>8} {'peak RSS':>9} {'upscale':>8}"
        print(header, flush=True)
        for kind, scale in CASES:
            if opts.only and opts.only not in kind:
                continue
            command = [sys.executable, "-m", "impasto.engine.upscale_bench", "--child", kind, str(scale)]
            command += [str(opts.size), opts.device, cache, str(opts.limit_gb)]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
            row = json.loads(lines[-1]) if lines else {"case": kind, "scale": scale, "error": done.stderr[-200:]}
            rows.append(row)
            if "error" in row:
                print(f"{kind:<12} {scale:>4}x  failed: {row['error']}", flush=True)
                continue
            print(
                f"{kind:<12} {scale:>4}x {row['out']:>11} {row['steps']:>5} {row['seconds']:>8} "
                f"{row['peak_rss_mb']:>6} MB {row['upscale_peak_mb']:>5} MB",
                flush=True,
            )
    if opts.json is not None:
        opts.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
