"""Fixtures for the command language: the shipped registry (v6 SDXL, v5 SD1.5, niji6) plus the tiny models."""

from __future__ import annotations

import pytest

from impasto.engine.registry import DEFAULT_REGISTRY_PATH, Registry, load_registry


@pytest.fixture(scope="session")
def registry() -> Registry:
    return load_registry(DEFAULT_REGISTRY_PATH, "v6")
