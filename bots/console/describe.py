"""``impasto describe FILE [--json]``: four Midjourney-style prompts for an image, from the model's captioner.

Runs inline (the engine on this machine). Each prompt parses with ``impasto explain``; ``--json`` prints
``{"prompts": [four strings]}``. The engine (torch) is imported inside the handler only.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from impasto.bots.config import Settings


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("describe", help="four prompts that describe an image (Midjourney's /describe)")
    p.add_argument("file", type=Path, help="a PNG, JPEG or WebP image")
    p.add_argument("--json", action="store_true", help='print {"prompts": [four strings]}')
    p.add_argument("--again", type=int, default=0, metavar="N", help="the N-th re-roll (🔄): the next-best phrases")
    p.add_argument("--model", default=None, help="model registry name whose captioner to use (default: the default)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from impasto.engine.engine import Engine
    from impasto.engine.errors import EngineError

    settings = Settings()  # type: ignore[call-arg]  # pydantic-settings fills fields from the environment
    path: Path = args.file
    try:
        if not path.is_file():
            raise ValueError(f"{path} is not a file")
        if path.stat().st_size > settings.max_upload_bytes:
            raise ValueError(f"{path} is larger than {settings.max_upload_bytes} bytes (IMPASTO_MAX_UPLOAD_BYTES)")
        if args.again < 0:
            raise ValueError("--again takes 0 or more")
        model = args.model or settings.registry.default
        settings.registry.get(model)
        engine = Engine(settings.registry, cache_dir=settings.data_dir / "models")
        prompts = engine.describe(model, path.read_bytes(), offset=args.again)
    except (EngineError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"prompts": prompts}, ensure_ascii=False))
    else:
        for number, prompt in enumerate(prompts, start=1):
            print(f"{number}️⃣ {prompt}")
    return 0
