"""Loading: the tiny models go through the same from_pretrained path as real ones; LRU within a memory budget."""

from __future__ import annotations

from pathlib import Path

from impasto.engine.engine import Engine
from impasto.engine.registry import Registry


def test_tiny_models_are_saved_safetensors_folders(engine: Engine, model_cache: Path) -> None:
    engine.models.get("tiny-sdxl")
    folder = model_cache / "tiny-sdxl"
    assert (folder / "model_index.json").is_file()
    assert {p.parent.name for p in folder.rglob("*.safetensors")} >= {"unet", "vae", "text_encoder", "text_encoder_2"}
    assert not [p for p in folder.rglob("*") if p.suffix in (".bin", ".ckpt", ".pt")]


def test_lru_eviction_keeps_resident_models_within_the_budget(registry: Registry, model_cache: Path) -> None:
    roomy = Engine(registry, device="cpu", cache_dir=model_cache)
    sd15 = roomy.models.get("tiny-sd15")
    roomy.models.get("tiny-sdxl")
    assert roomy.models.resident == ["tiny-sd15", "tiny-sdxl"]
    assert roomy.models.get("tiny-sd15") is sd15  # resident: not loaded again, and now the most recent
    assert roomy.models.resident == ["tiny-sdxl", "tiny-sd15"]

    tight = Engine(registry, device="cpu", cache_dir=model_cache, memory_budget_bytes=sd15.size_bytes + 1)
    tight.models.get("tiny-sd15")
    tight.models.get("tiny-sdxl")
    assert tight.models.resident == ["tiny-sdxl"]
