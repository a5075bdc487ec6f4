"""The registry's ``ip_adapter`` field: a folder / Hugging Face id, or a table with weights, subfolder, encoder."""

from __future__ import annotations

from pathlib import Path

import pytest

from impasto.engine.registry import TINY_IP_ADAPTER, AdapterEntry, RegistryError, load_registry


def _load(tmp_path: Path, body: str) -> object:
    path = tmp_path / "models.toml"
    path.write_text('default = "base"\n' + body)
    return load_registry(path)


def test_adapter_forms(tmp_path: Path) -> None:
    path = tmp_path / "models.toml"
    path.write_text(
        """
default = "xl"
[models.xl]
family = "sdxl"
source = "stabilityai/stable-diffusion-xl-base-1.0"
ip_adapter = { source = "h94/IP-Adapter", subfolder = "sdxl_models", weights = "ip-adapter_sdxl.safetensors" }

[models.v5]
family = "sd15"
source = "stable-diffusion-v1-5/stable-diffusion-v1-5"
ip_adapter = "/models/ip-adapter-sd15"

[models.none]
family = "sd15"
source = "org/name"
"""
    )
    registry = load_registry(path)
    assert registry.get("xl").ip_adapter == AdapterEntry(
        "h94/IP-Adapter", "ip-adapter_sdxl.safetensors", "sdxl_models", "image_encoder"
    )
    assert registry.get("v5").ip_adapter == AdapterEntry("/models/ip-adapter-sd15")
    assert registry.get("none").ip_adapter is None
    assert registry.get("tiny-sd15").ip_adapter == registry.get("tiny-sdxl").ip_adapter == AdapterEntry(TINY_IP_ADAPTER)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('{ source = "h94/IP-Adapter", weights = "ip-adapter_sd15.bin" }', "must be a .safetensors file"),
        ('{ weights = "a.safetensors" }', "needs a source"),
        ('{ source = "x", scale = "1" }', "unknown keys scale"),
        ('"builtin:other"', "the only built-in adapter is builtin:tiny-ip-adapter"),
        ("3", "must be a folder"),
    ],
)
def test_bad_adapters_are_refused(tmp_path: Path, value: str, message: str) -> None:
    body = f'[models.base]\nfamily = "sd15"\nsource = "org/name"\nip_adapter = {value}\n'
    with pytest.raises(RegistryError, match=message):
        _load(tmp_path, body)
