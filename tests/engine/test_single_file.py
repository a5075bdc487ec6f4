"""Offline single-file checkpoints: the tiny SD 1.5 and SDXL models written in the original (A1111) layout as one
.safetensors file loads through from_single_file with a local config folder, and paints what the folder paints."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from engine_helpers import png, spec_for
from ldm_export import export_sd15, export_sdxl

from impasto.engine.engine import Engine
from impasto.engine.errors import InvalidInput
from impasto.engine.registry import Family, Registry, RegistryError, load_registry
from impasto.engine.tiny import ensure_tiny_model

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("family", ["sd15", "sdxl"])
def test_a_single_file_checkpoint_loads_offline_and_paints_the_same(
    engine: Engine,
    registry: Registry,
    model_cache: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    family: Family,
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # any Hub access fails the test
    folder = ensure_tiny_model(family, model_cache)
    export = export_sd15 if family == "sd15" else export_sdxl
    checkpoint = export(folder, tmp_path / f"tiny-{family}.safetensors")
    base = registry.get(f"tiny-{family}")
    single = dataclasses.replace(base, name="tiny-single", source=str(checkpoint), config=str(folder))
    offline = Engine(
        Registry({**registry.models, "tiny-single": single}, "tiny-single"), device="cpu", cache_dir=model_cache
    )
    loaded = offline.models.get("tiny-single")
    reference = engine.models.get(base.name)
    parts = ("unet", "vae", "text_encoder") + (("text_encoder_2",) if family == "sdxl" else ())
    for part in parts:
        mine = getattr(loaded.pipe, part).state_dict()
        theirs = getattr(reference.pipe, part).state_dict()
        assert set(mine) == set(theirs), part
        assert all(np.allclose(mine[k].numpy(), theirs[k].numpy()) for k in theirs), part
    painted = offline.imagine(spec_for("tiny-single", batch_size=1))
    expected = engine.imagine(spec_for(base.name, batch_size=1))
    assert np.array_equal(np.asarray(png(painted.images[0])), np.asarray(png(expected.images[0])))


def test_config_must_be_a_diffusers_folder(registry: Registry, model_cache: Path, tmp_path: Path) -> None:
    checkpoint = tmp_path / "x.safetensors"
    checkpoint.write_bytes(b"")
    single = dataclasses.replace(registry.get("tiny-sd15"), name="x", source=str(checkpoint), config=str(tmp_path))
    broken = Engine(Registry({**registry.models, "x": single}, "x"), device="cpu", cache_dir=model_cache)
    with pytest.raises(InvalidInput, match="not a diffusers folder"):
        broken.models.get("x")


def test_registry_config_goes_with_a_single_file(tmp_path: Path) -> None:
    path = tmp_path / "models.toml"
    path.write_text(
        'default = "a"\n[models.a]\nfamily = "sd15"\nsource = "/m/dreamshaper.safetensors"\nconfig = "/m/sd15-config"\n'
    )
    assert load_registry(path).get("a").config == "/m/sd15-config"
    path.write_text('default = "a"\n[models.a]\nfamily = "sd15"\nsource = "org/name"\nconfig = "/m/sd15-config"\n')
    with pytest.raises(RegistryError, match=r"goes with a single \.safetensors source"):
        load_registry(path)
