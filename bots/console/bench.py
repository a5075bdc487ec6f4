"""``impasto bench``: how fast this machine paints a grid and an upscale, against a plain diffusers call.

On a GPU: the real SD 1.5 and SDXL architectures with random weights at native size. On a CPU: the tiny models.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from impasto.bots.config import Settings


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="measure seconds per grid and per upscale (engine vs plain diffusers)",
        description=(
            "Render a 4-image grid (CFG) and a 2x upscale per model family and compare with a plain diffusers "
            "pipeline call on the same weights. GPU: real SD 1.5 / SDXL architectures, random weights. "
            "CPU: the built-in tiny models."
        ),
    )
    parser.add_argument("--steps", type=int, default=30, help="denoising steps per grid (default 30)")
    parser.add_argument("--runs", type=int, default=2, help="timed runs per measurement, median reported")
    parser.add_argument("--family", choices=["sd15", "sdxl"], action="append", help="only this family (repeatable)")
    parser.add_argument("--device", default=None, help="torch device (default: cuda when available, else cpu)")
    parser.add_argument("--tiny", action="store_true", help="use the tiny models even on a GPU")
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
    )
    if args.json is not None:
        args.json.write_text(json.dumps([{**asdict(r), "images_per_s": r.images_per_s} for r in rows], indent=2))
    return 0
