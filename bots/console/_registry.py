"""What ``impasto explain`` and ``impasto translate`` share: the ``--model-registry`` option and loading the settings
and the registry it names (the leading underscore keeps this module out of the subcommand list)."""

from __future__ import annotations

import argparse
from pathlib import Path

from impasto.bots.config import Settings
from impasto.engine.registry import Registry, load_registry


def add_registry_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model-registry",
        type=Path,
        default=None,
        metavar="PATH",
        help="model registry TOML (default: IMPASTO_MODELS or the shipped engine/models.toml)",
    )


def settings_and_registry(args: argparse.Namespace) -> tuple[Settings, Registry]:
    """Raises ``RegistryError`` or ``ValueError`` (pydantic's) for a broken configuration: the caller says it in one
    line."""
    settings = Settings()  # type: ignore[call-arg]  # pydantic-settings fills fields from the environment
    if args.model_registry is not None:
        return settings, load_registry(args.model_registry, settings.default_model)
    return settings, settings.registry
