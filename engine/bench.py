"""``impasto bench``: seconds per imagine grid and per upscale, our engine against a plain diffusers call.

On a GPU: the real SD 1.5 and SDXL architectures at native size with random weights (speed does not depend on the
values), in the engine's dtype. On a CPU: the built-in tiny models, so the bench itself stays tested. Both paths
run the same weights through ``Engine.imagine`` and through ``pipe(prompt, num_images_per_prompt=4)`` with
diffusers' defaults, and report the ratio.
"""

from __future__ import annotations

import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from impasto.engine.engine import Engine
from impasto.engine.registry import BUILTIN_MODELS, Family, ModelEntry, Registry
from impasto.engine.spec import RenderSpec

#: Work per 4-image grid with CFG at 30 steps, in TFLOP (UNet ×8 per step, 4 VAE decodes).
GRID_TFLOP_30: dict[Family, float] = {"sd15": 202.9, "sdxl": 1664.8}
#: Dense bf16 throughput measured on the H100 this project targets.
PEAK_TFLOPS = 790.0
PROMPT = "a lighthouse on a cliff at dusk, oil painting"


@dataclass(frozen=True)
class BenchRow:
    model: str
    width: int
    height: int
    steps: int
    grid_s: float  # engine, median
    plain_grid_s: float  # plain diffusers call, median
    upscale_s: float
    peak_bytes: int
    device: str
    compute_fraction: float | None  # of the physical limit; real architectures on a GPU only

    @property
    def images_per_s(self) -> float:
        return 4 / self.grid_s

    @property
    def speedup(self) -> float:
        return self.plain_grid_s / self.grid_s


def _real_pipeline(family: Family, device: torch.device | str = "cpu") -> Any:
    """The published SD 1.5 / SDXL-base configs (param counts: UNet 859.5M / 2567.5M), random weights.

    The modules are initialised directly on ``device`` (seconds on a GPU instead of a minute on the CPU).
    """
    import diffusers
    from transformers import CLIPTextConfig

    lib: Any = diffusers

    def clip(hidden: int, layers: int, heads: int, act: str) -> Any:
        return CLIPTextConfig(
            vocab_size=49408,
            hidden_size=hidden,
            intermediate_size=hidden * 4,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            projection_dim=hidden,
            hidden_act=act,
            max_position_embeddings=77,
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
        )

    scheduler = lib.DPMSolverMultistepScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1
    )
    with torch.device(device):
        return _real_modules(lib, family, scheduler, clip)


def _real_modules(lib: Any, family: Family, scheduler: Any, clip: Callable[[int, int, int, str], Any]) -> Any:
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    from impasto.engine.tiny import _tokenizer

    vae = lib.AutoencoderKL(
        block_out_channels=(128, 256, 512, 512),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=4,
        layers_per_block=2,
        sample_size=512 if family == "sd15" else 1024,
        scaling_factor=0.18215 if family == "sd15" else 0.13025,
        force_upcast=False,
    )
    if family == "sd15":
        unet = lib.UNet2DConditionModel(
            sample_size=64,
            block_out_channels=(320, 640, 1280, 1280),
            down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
            up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
            cross_attention_dim=768,
            attention_head_dim=8,
            layers_per_block=2,
        )
        return lib.StableDiffusionPipeline(
            vae=vae,
            text_encoder=CLIPTextModel(clip(768, 12, 12, "quick_gelu")),
            tokenizer=_tokenizer(),
            unet=unet,
            scheduler=scheduler,
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
        )
    unet = lib.UNet2DConditionModel(
        sample_size=128,
        block_out_channels=(320, 640, 1280),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        transformer_layers_per_block=(1, 2, 10),
        attention_head_dim=(5, 10, 20),
        cross_attention_dim=2048,
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=256,
        projection_class_embeddings_input_dim=2816,
        layers_per_block=2,
    )
    return lib.StableDiffusionXLPipeline(
        vae=vae,
        text_encoder=CLIPTextModel(clip(768, 12, 12, "quick_gelu")),
        text_encoder_2=CLIPTextModelWithProjection(clip(1280, 32, 20, "gelu")),
        tokenizer=_tokenizer(),
        tokenizer_2=_tokenizer(),
        unet=unet,
        scheduler=scheduler,
    )


def _timed(fn: Callable[[], object], device: torch.device, runs: int) -> float:
    times = []
    for _ in range(runs):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        started = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _peak_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB; process-wide peak


def bench(
    *,
    cache_dir: Path,
    device: str | None = None,
    steps: int = 30,
    runs: int = 2,
    families: tuple[Family, ...] = ("sd15", "sdxl"),
    real: bool | None = None,
    log: Callable[[str], None] = print,
) -> list[BenchRow]:
    """Run the bench; ``real`` None means real architectures on CUDA, tiny models elsewhere."""
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    real = dev.type == "cuda" if real is None else real
    entries = {
        f: (
            ModelEntry(f"bench-{f}", f, "bench:random", 512 if f == "sd15" else 1024, steps, 7.0)
            if real
            else next(m for m in BUILTIN_MODELS if m.family == f)
        )
        for f in families
    }
    engine = Engine(
        Registry({e.name: e for e in entries.values()}, entries[families[0]].name), device=dev, cache_dir=cache_dir
    )
    rows = []
    for family, entry in entries.items():
        log(f"{entry.name}: loading ({'random-weight real architecture' if real else 'built-in tiny model'})")
        loaded = engine.models.adopt(entry, _real_pipeline(family, dev)) if real else engine.models.get(entry.name)
        side = entry.native_px
        spec = RenderSpec(model=entry.name, prompts=((PROMPT, 1.0),), width=side, height=side, seed=1, steps=steps)
        pipe = loaded.pipe
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)

        def plain(pipe: Any = pipe, side: int = side) -> None:
            pipe(
                PROMPT,
                num_images_per_prompt=4,
                num_inference_steps=steps,
                width=side,
                height=side,
                generator=torch.Generator("cpu").manual_seed(1),
            )

        def ours(spec: RenderSpec = spec) -> None:
            engine.imagine(spec)

        ours()  # warm-up: kernels, allocator, compel
        peak = _peak_bytes(dev)  # the engine's peak, before the plain pipeline runs
        plain()
        # Alternate the two so that both see the same machine load (a shared CPU is noisy).
        grid_times, plain_times = [], []
        for _ in range(runs):
            grid_times.append(_timed(ours, dev, 1))
            plain_times.append(_timed(plain, dev, 1))
        grid_s, plain_s = statistics.median(grid_times), statistics.median(plain_times)
        single = engine.imagine(replace(spec, batch_size=1)).images[0]
        upscale_s = _timed(lambda: engine.upscale(spec, single), dev, 1)  # noqa: B023
        fraction = None
        if real and dev.type == "cuda":
            fraction = GRID_TFLOP_30[family] * steps / 30 / PEAK_TFLOPS / grid_s
        row = BenchRow(entry.name, side, side, steps, grid_s, plain_s, upscale_s, peak, str(dev), fraction)
        log(format_row(row))
        rows.append(row)
        del loaded, pipe
        engine.models.evict(entry.name)
    return rows


def format_row(row: BenchRow) -> str:
    head = f"{row.model} {row.width}x{row.height} {row.steps} steps on {row.device}: "
    parts = [
        f"grid {row.grid_s:.2f} s ({row.images_per_s:.2f} images/s)",
        f"plain diffusers {row.plain_grid_s:.2f} s (engine is {row.speedup:.2f}x)",
        f"upscale 2x {row.upscale_s:.2f} s",
        f"peak memory {row.peak_bytes / 2**30:.2f} GiB",
    ]
    if row.compute_fraction is not None:
        parts.append(f"{100 * row.compute_fraction:.0f}% of the {PEAK_TFLOPS:.0f} TFLOP/s compute limit")
    return head + " | ".join(parts)
