"""``impasto bench``: seconds per imagine grid and per upscale, the FLOPs of that work, and how close it comes to the
device's peak.

Every figure is one row: what was painted, how (plain diffusers, the engine, the engine with channels-last memory
and fused QKV projections, and that under ``torch.compile``), its median seconds, the FLOPs of the work counted
with ``torch.utils.flop_counter.FlopCounterMode`` on one eager run (2 FLOPs per multiply-add; matmuls, convolutions
and attention, not norms or elementwise ops: as ../perf notes count them), the achieved TFLOP/s and its fraction of
the device's dense bf16 peak (``PEAK_BF16_TFLOPS``, by device name).

On a GPU: the real SD 1.5 and SDXL architectures at native size with random weights (speed does not depend on the
values), in the engine's dtype (bf16), all four ways in the same run. On a CPU: the built-in tiny models, plain and
engine (the other ways on request, ``variants``), so the bench itself and its FLOPs column stay tested.
"""

from __future__ import annotations

import re
import resource
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from impasto.engine.engine import Engine
from impasto.engine.registry import BUILTIN_MODELS, Family, ModelEntry, Registry
from impasto.engine.spec import RenderSpec

PROMPT = "a lighthouse on a cliff at dusk, oil painting"

#: Dense (no sparsity) bf16 tensor-core peaks in TFLOP/s, by a whole word of ``torch.cuda.get_device_name()``
#: ("NVIDIA H100 80GB HBM3"); the first match wins, so the more specific names come first. Sources: NVIDIA's
#: datasheets (H100 SXM / PCIe and H200: 1,979 / 1,513 / 1,979 TFLOPS with sparsity, so 989 / 756 / 989 dense; A100:
#: 312; L40S: 362; L40: 181; L4: 121; A10: 125) and the Ada Lovelace architecture whitepaper (RTX 4090: 165.2 with
#: FP32 accumulate). The project's perf notes measured 790 dense on its H100 SXM: the datasheet figure is the
#: ceiling, not what a matmul reaches.
PEAK_BF16_TFLOPS: tuple[tuple[str, float], ...] = (
    ("H200", 989.0),
    ("H100 PCIe", 756.0),
    ("H100", 989.0),
    ("A100", 312.0),
    ("L40S", 362.0),
    ("L40", 181.0),
    ("L4", 121.0),
    ("A10", 125.0),
    ("RTX 4090", 165.2),
)
#: The ways a grid is painted, in the order they run (each after the previous one: the optimisations accumulate).
VARIANTS = ("plain", "engine", "engine+cl+qkv", "engine+compile")
CPU_VARIANTS = ("plain", "engine")


def peak_for_name(name: str) -> float | None:
    """The dense bf16 peak of a device called ``name``, or None when the table does not know it."""
    for key, peak in PEAK_BF16_TFLOPS:
        if re.search(rf"(?<![A-Za-z0-9]){re.escape(key)}(?![A-Za-z0-9])", name):
            return peak
    return None


def device_peak_tflops(device: torch.device) -> float | None:
    """The device's dense bf16 peak, or None (a CPU, or a GPU not in the table)."""
    return peak_for_name(torch.cuda.get_device_name(device)) if device.type == "cuda" else None


@dataclass(frozen=True)
class BenchRow:
    model: str
    figure: str  # "grid" (4 images, CFG) or "upscale 2x"
    variant: str  # one of VARIANTS
    width: int
    height: int
    steps: int
    seconds: float  # median
    tflop: float  # the work, counted on one eager run
    peak_bytes: int
    device: str
    peak_tflops: float | None  # the device's dense bf16 peak, when known

    @property
    def tflops(self) -> float:
        """Achieved TFLOP/s."""
        return self.tflop / self.seconds

    @property
    def peak_fraction(self) -> float | None:
        return None if self.peak_tflops is None else self.tflops / self.peak_tflops


def count_tflop(fn: Callable[[], object]) -> float:
    """Run ``fn`` once, eagerly, and return the FLOPs it dispatched, in TFLOP."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return float(counter.get_total_flops()) / 1e12


def apply_variant(pipe: Any, variant: str, *, compile_backend: str = "inductor") -> None:
    """Turn ``pipe`` (in place) into ``variant``'s: channels-last memory for the convolutions and fused QKV
    projections (diffusers' ``fuse_qkv_projections``), then ``torch.compile`` of the UNet and the VAE decoder
    (``nn.Module.compile``: in place, so the pipeline and its img2img view keep the same modules)."""
    if variant == "engine+cl+qkv":
        pipe.unet.to(memory_format=torch.channels_last)
        pipe.vae.to(memory_format=torch.channels_last)
        pipe.fuse_qkv_projections()
    elif variant == "engine+compile":
        pipe.unet.compile(backend=compile_backend)
        pipe.vae.decoder.compile(backend=compile_backend)


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


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def _peak_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB; process-wide peak


def real_grid_tflop(family: Family, steps: int = 30) -> float:
    """The counted work of a real-architecture grid at native size (4 images, CFG: the UNet on 8 latents per step,
    then 4 VAE decodes), counted on the ``meta`` device: no memory, no time, any machine. The text encoders run once
    per grid and are left out (0.03 / 0.2 TFLOP, under 0.02 %)."""
    pipe = _real_pipeline(family, "meta")
    side = 64 if family == "sd15" else 128  # latent side of 512 / 1024 px
    with torch.device("meta"):
        latents = torch.randn(8, 4, side, side)
        text = torch.randn(8, 77, pipe.unet.config.cross_attention_dim)
        extra: dict[str, Any] = {}
        if family == "sdxl":
            extra["added_cond_kwargs"] = {"text_embeds": torch.randn(8, 1280), "time_ids": torch.randn(8, 6)}
        unet = count_tflop(lambda: pipe.unet(latents, torch.tensor([500] * 8), encoder_hidden_states=text, **extra))
        decode = count_tflop(lambda: pipe.vae.decode(torch.randn(4, 4, side, side)))
    return steps * unet + decode


def bench(
    *,
    cache_dir: Path,
    device: str | None = None,
    steps: int = 30,
    runs: int = 2,
    families: tuple[Family, ...] = ("sd15", "sdxl"),
    real: bool | None = None,
    variants: Sequence[str] | None = None,
    compile_backend: str = "inductor",
    log: Callable[[str], None] = print,
) -> list[BenchRow]:
    """Run the bench; ``real`` None means real architectures on CUDA, tiny models elsewhere. ``variants`` None: all
    of ``VARIANTS`` on CUDA, ``CPU_VARIANTS`` elsewhere."""
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    real = dev.type == "cuda" if real is None else real
    chosen = tuple(variants) if variants is not None else VARIANTS if dev.type == "cuda" else CPU_VARIANTS
    unknown = [v for v in chosen if v not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown bench variants {', '.join(unknown)}; known: {', '.join(VARIANTS)}")
    peak = device_peak_tflops(dev)
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
    rows: list[BenchRow] = []
    name = f"{dev} ({torch.cuda.get_device_name(dev)})" if dev.type == "cuda" else str(dev)
    log(f"device {name}: dense bf16 peak " + (f"{peak:g} TFLOP/s" if peak else "unknown, no fraction of peak"))
    for family, entry in entries.items():
        if not real:  # what the GPU path would count for this family, counted here without running it
            log(
                f"{family} real architecture, grid at {steps} steps: {real_grid_tflop(family, steps):.1f} TFLOP counted"
            )
        log(f"{entry.name}: loading ({'random-weight real architecture' if real else 'built-in tiny model'})")
        loaded = engine.models.adopt(entry, _real_pipeline(family, dev)) if real else engine.models.get(entry.name)
        side = entry.native_px
        spec = RenderSpec(model=entry.name, prompts=((PROMPT, 1.0),), width=side, height=side, seed=1, steps=steps)
        pipe = loaded.pipe

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

        def row(
            figure: str,
            variant: str,
            seconds: float,
            tflop: float,
            memory: int,
            size: int = side,
            name: str = entry.name,
        ) -> None:
            made = BenchRow(name, figure, variant, size, size, steps, seconds, tflop, memory, str(dev), peak)
            log(format_row(made))
            rows.append(made)

        work = {"plain": count_tflop(plain), "engine": count_tflop(ours)}  # also the warm-up runs
        for variant in chosen:
            apply_variant(pipe, variant, compile_backend=compile_backend)
            fn = plain if variant == "plain" else ours
            if variant == "engine+compile":
                fn()  # compiling happens on the first call: not timed
            _reset_peak(dev)
            seconds = _timed(fn, dev, runs)
            row("grid", variant, seconds, work["plain" if variant == "plain" else "engine"], _peak_bytes(dev))
        single = engine.imagine(replace(spec, batch_size=1)).images[0]

        def upscale(spec: RenderSpec = spec, single: bytes = single) -> None:
            engine.upscale(spec, single)

        upscale_tflop = count_tflop(upscale)
        _reset_peak(dev)
        seconds = _timed(upscale, dev, 1)
        row("upscale 2x", chosen[-1], seconds, upscale_tflop, _peak_bytes(dev), 2 * side)
        del loaded, pipe
        engine.models.evict(entry.name)
    return rows


def format_row(row: BenchRow) -> str:
    head = f"{row.model} {row.figure} {row.width}x{row.height} {row.steps} steps [{row.variant}] on {row.device}: "
    parts = [
        f"{row.seconds:.2f} s",
        f"{row.tflop:.4g} TFLOP counted",
        f"{row.tflops:.3g} TFLOP/s",
        f"peak memory {row.peak_bytes / 2**30:.2f} GiB",
    ]
    fraction = row.peak_fraction
    if fraction is None:
        parts.append("fraction of peak n/a (no bf16 peak known for this device)")
    else:
        parts.append(f"{100 * fraction:.1f}% of the {row.peak_tflops:g} TFLOP/s bf16 peak")
    return head + " | ".join(parts)
