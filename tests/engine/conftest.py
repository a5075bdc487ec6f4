"""The tiny models, built once per test session into a scratch cache, and an engine that uses them on the CPU."""

from __future__ import annotations

from pathlib import Path

import pytest

from impasto.engine.engine import Engine
from impasto.engine.registry import DEFAULT_REGISTRY_PATH, Registry, load_registry

FAMILIES = ("tiny-sd15", "tiny-sdxl")


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def registry() -> Registry:
    return load_registry(DEFAULT_REGISTRY_PATH, "tiny-sdxl")


@pytest.fixture(scope="session")
def lora_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("loras")


@pytest.fixture(scope="session")
def engine(registry: Registry, model_cache: Path, lora_dir: Path) -> Engine:
    return Engine(registry, device="cpu", cache_dir=model_cache, lora_dir=lora_dir)


@pytest.fixture(params=FAMILIES)
def model(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name
