"""The refusals a user or an operator sees: unknown names, pickle checkpoints, bombs, parameters we cannot honour."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from engine_helpers import spec_for, to_png
from PIL import Image

from impasto.engine.engine import Engine
from impasto.engine.errors import EngineOutOfMemory, InvalidInput, UnknownLora, UnknownModel, UnsafeCheckpoint
from impasto.engine.images import MAX_IMAGE_PIXELS, decode_image
from impasto.engine.registry import BUILTIN_MODELS, ModelEntry, Registry


def _registry(*extra: ModelEntry) -> Registry:
    return Registry({m.name: m for m in (*BUILTIN_MODELS, *extra)}, "tiny-sd15")


def test_unknown_model_names_the_available_ones(engine: Engine) -> None:
    with pytest.raises(UnknownModel, match=r"unknown model 'v99'; available: .*tiny-sd15"):
        engine.imagine(spec_for("v99"))


def test_unknown_lora_names_the_folder_and_what_is_there(engine: Engine, lora_dir: Path) -> None:
    with pytest.raises(UnknownLora, match=r"unknown LoRA 'ink': no ink.safetensors in .*available: none"):
        engine.imagine(spec_for("tiny-sd15", prompts=(("a cat <lora:ink:0.8>", 1.0),)))
    with pytest.raises(UnknownLora, match="'paper'"):
        engine.imagine(spec_for("tiny-sd15", loras=(("paper", 1.0),)))


@pytest.mark.parametrize("suffix", [".ckpt", ".bin", ".pt", ".pth"])
def test_pickle_checkpoints_are_refused_before_reading(tmp_path: Path, suffix: str) -> None:
    checkpoint = tmp_path / f"model{suffix}"
    checkpoint.write_bytes(b"not even read")
    entry = ModelEntry("evil", "sd15", str(checkpoint), 512, 30, 7.0)
    engine = Engine(_registry(entry), device="cpu", cache_dir=tmp_path / "cache")
    with pytest.raises(UnsafeCheckpoint, match=r"pickle checkpoints .* can run arbitrary code"):
        engine.imagine(spec_for("evil"))


def test_a_folder_with_only_pickle_weights_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    (folder / "unet").mkdir(parents=True)
    (folder / "model_index.json").write_text("{}")
    (folder / "unet" / "diffusion_pytorch_model.bin").write_bytes(b"pickle")
    entry = ModelEntry("old", "sd15", str(folder), 512, 30, 7.0)
    engine = Engine(_registry(entry), device="cpu", cache_dir=tmp_path / "cache")
    with pytest.raises(UnsafeCheckpoint, match=r"diffusion_pytorch_model.bin"):
        engine.imagine(spec_for("old"))


def test_weird_is_refused_with_the_allowed_value(engine: Engine) -> None:
    with pytest.raises(InvalidInput, match=r"--weird 250 is not supported .* only --weird 0"):
        engine.imagine(spec_for("tiny-sd15", weird=250))


def test_bad_sizes_are_refused(engine: Engine) -> None:
    with pytest.raises(InvalidInput, match="width must be a multiple of 8"):
        engine.imagine(spec_for("tiny-sd15", width=100))


def test_decompression_bombs_and_non_images_are_refused() -> None:
    side = int(MAX_IMAGE_PIXELS**0.5) + 64
    bomb = to_png(Image.new("1", (side, side)))  # tiny file, huge picture
    with pytest.raises(InvalidInput, match="too large to decode"):
        decode_image(bomb)
    with pytest.raises(InvalidInput, match="not a readable PNG, JPEG or WebP"):
        decode_image(b"GIF89a nonsense")


def test_out_of_memory_becomes_engine_out_of_memory(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """The device OOM (raised at the pipeline call: a CPU cannot run out on cue) reaches the queue as one type."""
    from impasto.engine.loading import LoadedModel

    def exhausted(*args: object, **kwargs: object) -> None:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(LoadedModel, "view", lambda self, task: exhausted)
    with pytest.raises(EngineOutOfMemory, match=r"out of memory on cpu while rendering imagine 4×64x64"):
        engine.imagine(spec_for("tiny-sd15"))
