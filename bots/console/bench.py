"""``impasto bench``: how fast this machine paints a grid and an upscale, against a plain diffusers call, with the
counted FLOPs of each figure and its fraction of the device's bf16 peak.

On a GPU: the real SD 1.5 and SDXL architectures with random weights at native size. On a CPU: the tiny models.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from impasto.bots.config import Settings

# The names only (a tuple of strings): the bench module itself imports torch, which `impasto --help` must not.
VARIANTS = ("plain", "engine", "engine+cl+qkv", "engine+compile")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="measure seconds, counted FLOPs and the fraction of peak per grid and per upscale",
        description=(
            "Render a 4-image grid (CFG) and a 2x upscale per model family: a plain diffusers pipeline call, the "
            "engine, the engine with channels-last and fused QKV, and that under torch.compile, on the same "
            "weights. Each figure prints its counted FLOPs and the fraction of the device's bf16 peak. GPU: real "
            "SD 1.5 / SDXL architectures, random weights, all four ways. CPU: the built-in tiny models, plain and "
            "engine."
        ),
    )
    parser.add_argument("--steps", type=int, default=30, help="denoising steps per grid (default 30)")
    parser.add_argument("--runs", type=int, default=2, help="timed runs per measurement, median reported")
    parser.add_argument("--family", choices=["sd15", "sdxl"], action="append", help="only this family (repeatable)")
    parser.add_argument("--device", default=None, help="torch device (default: cuda when available, else cpu)")
    parser.add_argument("--tiny", action="store_true", help="use the tiny models even on a GPU")
    parser.add_argument(
        "--variant",
        choices=list(VARIANTS),
        action="append",
        help="only these ways of painting (repeatable; default: all on a GPU, plain and engine on a CPU)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the rows as JSON to this file")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from impasto.engine.bench import bench

    settings = Settings()  # type: ignore[call-arg]  # pydantic-settings fills fields from the environment
    if args.steps < 1 or args.runs < 1:
        print("error: --steps and --runs must be at least 1", file=sys.stderr)
        return 2
    rows = bench(
        cache_dir=settings.data_dir / "models",
        device=args.device,
        steps=args.steps,
        runs=args.runs,
        families=tuple(args.family or ("sd15", "sdxl")),
        real=False if args.tiny else None,
        variants=args.variant,
    )
    if args.json is not None:
        data = [{**asdict(r), "tflops": r.tflops, "peak_fraction": r.peak_fraction} for r in rows]
        args.json.write_text(json.dumps(data, indent=2))
    return 0
