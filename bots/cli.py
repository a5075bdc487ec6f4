"""The ``impasto`` console command.

Each subcommand lives in its own module under ``impasto.bots.console`` and exposes ``register(subparsers)``; this
module only discovers them, so adding a command never means editing a central list. Console modules must not import
torch at import time (``impasto --help`` runs on bot hosts): they import the engine inside their handlers.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Callable, Sequence

from redis.exceptions import ConnectionError as RedisConnectionError

from impasto.bots import console

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="impasto",
        description="A Midjourney-style image service for Discord and Telegram.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for info in sorted(pkgutil.iter_modules(console.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{console.__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except RedisConnectionError as exc:
        # Every queue-backed command (worker, status, the bots, imagine through the queue) lands here alike.
        print(f"cannot reach Redis: {exc} (is it running, and is IMPASTO_REDIS_URL right?)", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # `impasto explain --json … | head`: the reader left; no traceback. Point stdout at devnull so the
        # interpreter's final flush does not raise again.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
