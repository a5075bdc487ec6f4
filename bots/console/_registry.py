"""What ``impasto explain``, ``impasto translate`` and ``impasto models`` share: the ``--model-registry`` option and
loading the settings and the registry it names (the leading underscore keeps this module out of the subcommand
list)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from impasto.bots.config import Settings
from impasto.engine.registry import Registry, RegistryError, load_registry


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


def configured(args: argparse.Namespace, says: str, *, model: str | None = None) -> tuple[Settings, Registry] | None:
    """``settings_and_registry(args)`` (and ``model``, when given, checked to be in the registry); for a broken
    configuration ``None``, after one line on stderr: ``{says}: {the error}``. The caller returns its exit status."""
    try:
        settings, registry = settings_and_registry(args)
        if model is not None:
            registry.get(model)
    except (RegistryError, ValueError) as exc:
        print(f"{says}: {exc}", file=sys.stderr)
        return None
    return settings, registry
