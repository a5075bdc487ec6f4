"""``impasto bench`` on the CPU with the tiny models: every figure with its counted FLOPs; the FLOPs counting itself,
the peak table, and the GPU-only ways of painting (channels-last + fused QKV, torch.compile) as far as a CPU runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from impasto.bots.cli import main
from impasto.engine.bench import (
    VARIANTS,
    _real_pipeline,
    apply_variant,
    bench,
    count_tflop,
    peak_for_name,
    real_grid_tflop,
)
from impasto.engine.engine import Engine
from impasto.engine.spec import RenderSpec
from impasto.engine.tiny import ensure_tiny_model


def test_bench_reports_every_figure_with_its_flops(
    clean_env: None,
    data_dir: Path,
    model_cache: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (data_dir / "models").symlink_to(model_cache, target_is_directory=True)
    monkeypatch.setenv("IMPASTO_DATA_DIR", str(data_dir))
    out = data_dir / "bench.json"
    args = ["bench", "--steps", "2", "--runs", "1", "--device", "cpu", "--family", "sd15", "--json", str(out)]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "tiny-sd15 grid 256x256 2 steps [plain] on cpu: " in text
    assert "TFLOP counted" in text
    assert "fraction of peak n/a" in text  # a CPU has no bf16 tensor-core peak in the table
    assert "sd15 real architecture, grid at 2 steps: " in text
    rows = json.loads(out.read_text())
    assert [(r["figure"], r["variant"]) for r in rows] == [
        ("grid", "plain"),
        ("grid", "engine"),
        ("upscale 2x", "engine"),
    ]
    for row in rows:
        assert row["seconds"] > 0
        assert row["tflop"] > 0
        assert row["tflops"] == pytest.approx(row["tflop"] / row["seconds"])
        assert row["peak_bytes"] > 0
        assert row["peak_fraction"] is None


def test_flops_are_counted_two_per_multiply_add() -> None:
    linear = torch.nn.Linear(64, 32, bias=False)
    x = torch.randn(8, 64)
    assert count_tflop(lambda: linear(x)) * 1e12 == 2 * 8 * 64 * 32


@pytest.mark.slow
def test_a_grid_counts_one_unet_call_per_step(engine: Engine) -> None:
    """One more step adds exactly one UNet call on the CFG batch (4 images × 2) to the counted work."""
    spec = RenderSpec(model="tiny-sd15", prompts=(("a lighthouse", 1.0),), width=64, height=64, seed=1, steps=2)
    unet = engine.models.get("tiny-sd15").pipe.unet
    calls: list[tuple[tuple[object, ...], dict[str, object]]] = []
    hook = unet.register_forward_pre_hook(lambda _m, a, k: calls.append((a, k)), with_kwargs=True)
    try:
        engine.imagine(spec)
    finally:
        hook.remove()
    # Counted after that first render: a model's first render does some one-time work of its own (0.2 % more here).
    two = count_tflop(lambda: engine.imagine(spec))
    three = count_tflop(lambda: engine.imagine(RenderSpec(**{**spec.__dict__, "steps": 3})))
    args, kwargs = calls[0]  # the inputs of one UNet call of that render, as the pipeline made them
    assert args[0].shape[0] == 8  # type: ignore[attr-defined]  # 4 images, with and without the prompt
    one_call = count_tflop(lambda: unet(*args, **kwargs))
    assert three - two == pytest.approx(one_call, rel=1e-6)
    assert one_call > 0


def test_peak_table_by_device_name() -> None:
    assert peak_for_name("NVIDIA H100 80GB HBM3") == 989.0
    assert peak_for_name("NVIDIA H100 PCIe") == 756.0
    assert peak_for_name("NVIDIA H200") == 989.0
    assert peak_for_name("NVIDIA A100-SXM4-80GB") == 312.0
    assert peak_for_name("NVIDIA L40S") == 362.0
    assert peak_for_name("NVIDIA L4") == 121.0
    assert peak_for_name("NVIDIA A10G") is None  # not the A10, not in the table: no fraction is made up
    assert peak_for_name("cpu") is None


@pytest.mark.slow
def test_every_variant_runs_on_the_cpu(model_cache: Path) -> None:
    """The GPU path's ways of painting, with torch.compile's tracing (the eager backend: no C++ build on a CPU)."""
    logged: list[str] = []
    rows = bench(
        cache_dir=model_cache,
        device="cpu",
        steps=1,
        runs=1,
        families=("sd15",),
        variants=VARIANTS,
        compile_backend="eager",
        log=logged.append,
    )
    assert [r.variant for r in rows] == [*VARIANTS, "engine+compile"]
    assert rows[2].tflop == rows[3].tflop == rows[1].tflop  # the same work, however it is run
    assert any("[engine+compile]" in line for line in logged)


@pytest.mark.slow
def test_channels_last_and_fused_qkv_are_applied(model_cache: Path) -> None:
    import diffusers

    pipe = diffusers.StableDiffusionPipeline.from_pretrained(ensure_tiny_model("sd15", model_cache))
    apply_variant(pipe, "engine+cl+qkv")
    assert pipe.unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    assert pipe.vae.decoder.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    fused = [m for m in pipe.unet.modules() if getattr(m, "fused_projections", False)]
    assert fused
    assert all(hasattr(m, "to_qkv") or hasattr(m, "to_kv") for m in fused)


def test_the_gpu_paths_architectures_count_as_published() -> None:
    """The real SD 1.5 / SDXL configs the GPU path runs, built on the meta device: the released parameter counts,
    and the per-call FLOPs of the project's perf notes (803 / 6,761 GFLOP per UNet call, 2,515 / 10,470 per decode),
    so a grid at 30 steps is the 203 / 1,665 TFLOP the notes derive."""
    unet = _real_pipeline("sd15", "meta").unet
    assert sum(p.numel() for p in unet.parameters()) == pytest.approx(859.5e6, rel=1e-3)
    assert sum(p.numel() for p in _real_pipeline("sdxl", "meta").unet.parameters()) == pytest.approx(2567.5e6, rel=1e-3)
    assert real_grid_tflop("sd15", 30) == pytest.approx(30 * 8 * 0.80327 + 4 * 2.51452, rel=1e-4)
    assert real_grid_tflop("sdxl", 30) == pytest.approx(30 * 8 * 6.76124 + 4 * 10.47039, rel=1e-4)
    assert real_grid_tflop("sd15", 30) == pytest.approx(202.9, abs=0.1)
    assert real_grid_tflop("sdxl", 30) == pytest.approx(1664.8, abs=0.5)
