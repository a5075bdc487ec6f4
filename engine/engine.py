"""The engine: a ``RenderSpec`` (plus an action input) in, a ``RenderResult`` out. Synchronous; one thread owns it.

Every action ends in one of three diffusers pipelines that share one set of weights: txt2img (imagine), img2img
(variations, upscales, blends) and inpaint (zoom, pan, make square, vary region). The mappings from Midjourney's
parameters are the module-level functions below; README documents them.
"""

from __future__ import annotations

import contextlib
import math
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from impasto.engine.conditioning import HOUSE_NEGATIVE, build_segments, strip_loras
from impasto.engine.describe import Describer, load_describer
from impasto.engine.editing import EmbeddingSwitch, embedding_switch, steps_to_run
from impasto.engine.errors import EngineOutOfMemory, InvalidInput, UnknownLora
from impasto.engine.grid import compose_grid
from impasto.engine.images import decode_image, encode_png
from impasto.engine.loading import LoadedModel, ModelCache
from impasto.engine.outpaint import BLEND_RATIOS, Layout, pan_layout, size_for_aspect, square_layout
from impasto.engine.outpaint import zoom_layout as _zoom_layout
from impasto.engine.preview import latent_preview
from impasto.engine.provenance import IMPASTO_KEY, PARAMETERS_KEY, parameters, spec_json
from impasto.engine.registry import ModelEntry, Registry, RegistryError, scaled_steps
from impasto.engine.spec import (
    ActionInput,
    Blend,
    Dimensions,
    Inpaint,
    Kind,
    LoraRef,
    Outpaint,
    PanDirection,
    Progress,
    ProgressFn,
    RenderResult,
    RenderSpec,
    Strength,
    Upscale,
    Vary,
)
from impasto.engine.translate import Translation
from impasto.engine.upscaler import SuperResolution, blend_tiles, load_upscaler, refine_tiles

#: img2img strengths (fraction of the schedule re-run). Midjourney's "subtle" keeps the composition.
VARY_STRENGTH: dict[Strength, float] = {"subtle": 0.35, "strong": 0.7}
UPSCALE_STRENGTH = {False: 0.25, True: 0.5}  # subtle, creative (the path without an SR model)
UPSCALE_SCALES = (2, 4)
#: Creative after an SR model: the SR model already made the detail, so the refine re-runs less of the schedule.
REFINE_STRENGTH = 0.35
#: The largest side an SR upscale may produce (a 16:9 1456×816 image at 4× is 5824 wide); memory is bounded by the
#: tiles, the output itself is 3 bytes a pixel.
MAX_UPSCALE_SIDE = 8192
INPAINT_STRENGTH = 0.9  # vary region: keep a hint of the old colours under the mask
OUTPAINT_STRENGTH = 1.0  # new canvas area: painted from pure noise
BLEND_STRENGTH = 0.8
BLEND_ADAPTER_SCALE = 1.0  # /blend through the IP-Adapter: the images are the whole prompt
MAX_SEED = 2**32


def steps_for(base: int, quality: float, draft: bool) -> int:
    """``--q`` multiplies the model's steps (.25/.5/1/2); ``--draft`` (no few-step variant) halves them. At least 1."""
    return scaled_steps(base, quality, draft)


def guidance_for(base: float, stylize: int) -> float:
    """``--stylize`` → classifier-free guidance. The registry's guidance is the value at the default 100.

    Midjourney: low stylize follows the prompt literally, high stylize is freer and more "artistic". So guidance
    falls as stylize rises: ×1.25 at 0, ×1 at 100, ×0.5 at 1000 (linear in between), never below 1.5 (or below the
    model's own guidance when that is lower). Few-step models distilled without guidance (SDXL-Turbo, Lightning,
    LCM) have a registry guidance of 1 or less: it is used as it is, since guidance > 1 would burn their pictures.
    """
    if base <= 1.0:
        return round(base, 3)
    s = min(max(stylize, 0), 1000)
    factor = 1.25 - 0.25 * s / 100 if s <= 100 else 1.0 - 0.5 * (s - 100) / 900
    return round(max(min(1.5, base), base * factor), 3)


def chaos_mix(chaos: int) -> float:
    """The share of each image's starting noise that is its own (the rest is shared by the batch).

    ``--chaos 0``: 60 % own noise, so the four images share a composition but differ; ``--chaos 100``: fully
    independent noise. Noise is mixed as ``sqrt(1-a)·shared + sqrt(a)·own`` (unit variance stays unit).
    """
    return 0.6 + 0.4 * min(max(chaos, 0), 100) / 100


def image_prompt_strength(image_weight: float) -> float:
    """``--iw`` without IP-Adapter: image prompts seed an img2img; strength ``1 - iw/4`` (iw 1 → .75, iw 3 → .25)."""
    return min(1.0, max(0.25, 1.0 - image_weight / 4))


def image_seeds(seed: int, count: int) -> tuple[int, ...]:
    """Each image's own seed: the base seed, then the next ones."""
    return tuple((seed + i) % MAX_SEED for i in range(count))


@dataclass
class _Job:
    """One pipeline call being prepared."""

    kind: Kind
    task: str  # txt2img / img2img / inpaint
    width: int
    height: int
    batch: int
    call: dict[str, Any] = field(default_factory=dict)
    strength: float | None = None
    keep: tuple[Image.Image, Layout] | None = None  # old pixels to paste back exactly, and where
    max_side: int = 4096  # whole-image diffusion; tiled upscales are bounded by their tile, not the image


class Engine:
    """Owns the device and the resident models. Not thread-safe: call it from one thread."""

    def __init__(
        self,
        registry: Registry,
        *,
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
        cache_dir: Path,
        lora_dir: Path | None = None,
        memory_budget_bytes: int | None = None,
    ) -> None:
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        # bf16 on GPUs: the SDXL VAE needs no fp32 upcast in bf16 (it does in fp16). fp32 on the CPU.
        self.dtype = dtype or (torch.bfloat16 if self.device.type == "cuda" else torch.float32)
        self.lora_dir = lora_dir
        self.models = ModelCache(
            registry,
            device=self.device,
            dtype=self.dtype,
            cache_dir=cache_dir,
            memory_budget_bytes=memory_budget_bytes,
        )
        self._upscalers: dict[str, SuperResolution] = {}
        self._describers: dict[str, Describer] = {}
        self.translation = Translation(cache_dir=cache_dir, device=self.device)  # CJK prompts → English

    # --- The public actions ---------------------------------------------------------------------------------------

    def render(
        self, spec: RenderSpec, action: ActionInput | None = None, progress: ProgressFn | None = None
    ) -> RenderResult:
        """Dispatch on the action input (None: imagine). The queue worker calls this."""
        if action is None:
            return self.imagine(spec, progress)
        if isinstance(action, Vary):
            return self.variation(spec, action.image, action.strength, progress)
        if isinstance(action, Upscale):
            return self.upscale(spec, action.image, creative=action.creative, scale=action.scale, progress=progress)
        if isinstance(action, Outpaint):
            return self.outpaint(
                spec, action.image, zoom=action.zoom, pan=action.pan, square=action.square, progress=progress
            )
        if isinstance(action, Inpaint):
            return self.inpaint(spec, action.image, action.mask, progress)
        if isinstance(action, Blend):
            return self.blend(spec, list(action.images), action.dimensions, progress)
        raise InvalidInput(f"unknown action input {type(action).__name__}")

    def imagine(self, spec: RenderSpec, progress: ProgressFn | None = None) -> RenderResult:
        """txt2img, ``spec.batch_size`` images. Image prompts: through the model's IP-Adapter at ``--iw`` as its
        scale; without one, an img2img from their latent blend at ``image_prompt_strength``."""
        if spec.image_prompts and self._has_adapter(spec):
            images = [decode_image(b, what="image prompt") for b in spec.image_prompts]
            job = _Job("imagine", "txt2img", *_size(spec), spec.batch_size)
            return self._run(spec, job, progress, content=(images, spec.image_weight))
        if spec.image_prompts and image_prompt_strength(spec.image_weight) < 1.0:
            images = [decode_image(b, what="image prompt") for b in spec.image_prompts]
            job = _Job("imagine", "img2img", *_size(spec), spec.batch_size)
            job.strength = image_prompt_strength(spec.image_weight)
            return self._run(spec, job, progress, blend_sources=images)
        return self._run(spec, _Job("imagine", "txt2img", *_size(spec), spec.batch_size), progress)

    def variation(
        self, spec: RenderSpec, image_png: bytes, strength: Strength = "subtle", progress: ProgressFn | None = None
    ) -> RenderResult:
        """V1–V4 / Vary (Subtle/Strong): img2img from one image at the documented strength; a new batch."""
        if strength not in VARY_STRENGTH:
            raise InvalidInput(f"variation strength must be subtle or strong, not {strength!r}")
        image = _fit8(decode_image(image_png))
        job = _Job("vary", "img2img", image.width, image.height, spec.batch_size, {"image": image})
        job.strength = VARY_STRENGTH[strength]
        return self._run(spec, job, progress)

    def upscale(
        self,
        spec: RenderSpec,
        image_png: bytes,
        *,
        creative: bool = False,
        scale: int = 2,
        progress: ProgressFn | None = None,
    ) -> RenderResult:
        """Upscale (Subtle/Creative) ×2 or ×4; one image.

        With the model's SR weights (registry ``upscaler``): Subtle is the SR model alone (no diffusion, nothing
        invented); Creative is the SR model, then img2img over overlapping tiles of the model's native size at
        ``REFINE_STRENGTH``. Without them: a Lanczos resize, then img2img of the whole image (tiled VAE).
        """
        if scale not in UPSCALE_SCALES:
            raise InvalidInput(f"upscale scale must be 2 or 4, not {scale}")
        image = decode_image(image_png)
        if max(image.size) * scale > MAX_UPSCALE_SIDE:
            raise InvalidInput(
                f"a {image.width}x{image.height} image upscaled {scale}x would exceed {MAX_UPSCALE_SIDE} px a side"
            )
        sr = self._upscaler(spec.model)
        if sr is not None and not creative:  # no diffusion follows: any size goes, pixel for pixel
            started = time.perf_counter()
            big = sr.upscale(image, scale)
            entry, seed = self.models.entry(spec.model), spec.seed if spec.seed is not None else 0
            job = _Job("upscale", "sr", big.width, big.height, 1)
            elapsed = time.perf_counter() - started
            return self._result(spec, job, entry, [big], seed, (seed,), 0, 0.0, sr.name, elapsed, started)
        image = _fit8(image)
        if sr is None:
            big = image.resize((image.width * scale, image.height * scale), Image.Resampling.LANCZOS)
            job = _Job("upscale", "img2img", big.width, big.height, 1, {"image": big})
            job.strength = UPSCALE_STRENGTH[creative]
            return self._run(spec, job, progress, vae_tiling=True)
        big = sr.upscale(image, scale)
        job = _Job("upscale", "img2img", big.width, big.height, 1, max_side=MAX_UPSCALE_SIDE)
        job.strength = REFINE_STRENGTH
        return self._run(spec, job, progress, refine=(big, sr.name))

    def describe(self, model: str, image_png: bytes, *, offset: int = 0) -> list[str]:
        """/describe: four prompts for an image, from the model's captioner (registry ``describer``)."""
        source = self.models.entry(model).describer
        if source is None:
            raise InvalidInput(f"model {model} has no describer (a CLIP checkpoint) in the registry")
        if source not in self._describers:
            self._describers[source] = load_describer(source, self.models.cache_dir, self.device)
        return self._describers[source].describe(decode_image(image_png), offset=offset)

    def _upscaler(self, model: str) -> SuperResolution | None:
        """The model's SR weights, loaded once and kept (a few MB to a few hundred MB); None when none are set."""
        source = self.models.entry(model).upscaler
        if source is None:
            return None
        if source not in self._upscalers:
            self._upscalers[source] = load_upscaler(source, self.models.cache_dir, self.device, self.dtype)
        return self._upscalers[source]

    def outpaint(
        self,
        spec: RenderSpec,
        image_png: bytes,
        *,
        zoom: float | None = None,
        pan: PanDirection | None = None,
        square: bool = False,
        progress: ProgressFn | None = None,
    ) -> RenderResult:
        """Zoom Out / Pan / Make Square: a new canvas, the old image kept pixel for pixel, the rest painted."""
        if sum((zoom is not None, pan is not None, square)) != 1:
            raise InvalidInput("outpaint needs exactly one of zoom, pan or square")
        image = decode_image(image_png)
        native = self.models.entry(spec.model).native_px
        if zoom is not None:
            layout, kind = _zoom_layout(image.size, zoom), "zoom"
        elif pan is not None:
            if pan not in ("left", "right", "up", "down"):
                raise InvalidInput(f"pan direction must be left, right, up or down, not {pan!r}")
            layout, kind = pan_layout(image.size, pan, native), "pan"
        else:
            layout, kind = square_layout(image.size, native), "square"
        job = _Job(kind, "inpaint", *layout.canvas, spec.batch_size)  # type: ignore[arg-type]
        job.call = {"image": layout.place(image), "mask_image": layout.mask()}
        job.strength = OUTPAINT_STRENGTH
        job.keep = (layout.inner(image), layout)
        return self._run(spec, job, progress)

    def inpaint(
        self, spec: RenderSpec, image_png: bytes, mask_png: bytes, progress: ProgressFn | None = None
    ) -> RenderResult:
        """Vary (Region): repaint where the mask is light (> 127), keep the rest pixel for pixel."""
        image = decode_image(image_png)
        mask = decode_image(mask_png, what="mask", mode="L")
        if mask.size != image.size:
            raise InvalidInput(
                f"the mask is {mask.size[0]}x{mask.size[1]} but the image is {image.width}x{image.height}"
            )
        mask = mask.point(lambda v: 255 if v > 127 else 0)
        if not mask.getbbox():
            raise InvalidInput("the mask is empty: paint the region to vary in white")
        image, mask = _fit8(image), mask.resize(_fit8(image).size, Image.Resampling.NEAREST)
        keep = Image.eval(mask, lambda v: 255 - v)
        job = _Job("inpaint", "inpaint", image.width, image.height, spec.batch_size)
        job.call = {"image": image, "mask_image": mask}
        job.strength = INPAINT_STRENGTH
        job.keep = (image, Layout(image.size, (0, 0, image.width, image.height)))
        return self._run(spec, job, progress, keep_mask=keep)

    def blend(
        self,
        spec: RenderSpec,
        images: list[bytes],
        dimensions: Dimensions = "square",
        progress: ProgressFn | None = None,
    ) -> RenderResult:
        """/blend 2–5 images: with the model's IP-Adapter, txt2img from the images' embeddings (one token sequence
        for all of them, at ``BLEND_ADAPTER_SCALE``); without one, their VAE latents averaged, then img2img at 0.8.

        The output keeps the spec's pixel count at the ratio of ``dimensions`` (portrait 2:3, square 1:1,
        landscape 3:2).
        """
        if not 2 <= len(images) <= 5:
            raise InvalidInput(f"blend takes 2 to 5 images, not {len(images)}")
        if dimensions not in BLEND_RATIOS:
            raise InvalidInput(f"blend dimensions must be portrait, square or landscape, not {dimensions!r}")
        decoded = [decode_image(b, what=f"image {i + 1}") for i, b in enumerate(images)]
        side = math.isqrt(spec.width * spec.height)
        width, height = size_for_aspect(side, *BLEND_RATIOS[dimensions])
        if self._has_adapter(spec):
            job = _Job("blend", "txt2img", width, height, spec.batch_size)
            return self._run(spec, job, progress, content=(decoded, BLEND_ADAPTER_SCALE))
        job = _Job("blend", "img2img", width, height, spec.batch_size)
        job.strength = BLEND_STRENGTH
        return self._run(spec, job, progress, blend_sources=decoded)

    def _has_adapter(self, spec: RenderSpec) -> bool:
        """Whether the model that paints ``spec`` (its few-step variant under --draft) has an IP-Adapter."""
        return self._for_render(spec)[0].ip_adapter is not None

    # --- The one render path --------------------------------------------------------------------------------------

    def _run(self, spec: RenderSpec, job: _Job, progress: ProgressFn | None, **options: Any) -> RenderResult:
        """Paint what the model will read: CJK text translated first where the registry says so (translate.py)."""
        reading = self.translation.read(spec, self.models.entry(spec.model))
        return reading.stamp(self._paint(reading.spec, job, progress, **options))

    def _paint(
        self,
        spec: RenderSpec,
        job: _Job,
        progress: ProgressFn | None,
        *,
        blend_sources: list[Image.Image] | None = None,
        vae_tiling: bool = False,
        keep_mask: Image.Image | None = None,
        refine: tuple[Image.Image, str] | None = None,
        content: tuple[list[Image.Image], float] | None = None,
    ) -> RenderResult:
        """``content``: reference images and their adapter scale (image prompts, /blend) for the IP-Adapter."""
        started = time.perf_counter()
        _validate(spec, job)
        chosen, halve = self._for_render(spec)
        with _oom_guard(job, self.device):  # loading a model onto a full GPU fails the same way
            model = self.models.get(chosen.name)
        entry = model.entry
        few_step = chosen.name != spec.model  # --draft on the model's few-step variant: its own steps and guidance
        pipe = model.view(job.task)
        seed = spec.seed if spec.seed is not None else secrets.randbelow(MAX_SEED)
        seeds = image_seeds(seed, job.batch)
        steps = steps_for(entry.steps if few_step else spec.steps or entry.steps, spec.quality, halve)
        if job.strength is not None and job.strength < 1.0:
            steps = max(steps, math.ceil(1 / job.strength))  # diffusers runs int(steps × strength) ≥ 1 steps
        if spec.guidance is not None and not few_step:
            guidance = spec.guidance
        else:
            guidance = guidance_for(entry.guidance, spec.stylize)
        segments = build_segments(_clean_prompts(spec.prompts), style_raw=spec.style_raw, stylize=spec.stylize)

        gpu_started = time.perf_counter()
        with (
            _oom_guard(job, self.device),
            self._loras(model, _lora_refs(spec)),
            _circular(model.pipe, spec.tile),
            _vae_tiling(model.pipe, vae_tiling),
            _stopping(pipe, spec, job, steps) as sigmas,
            _references(model, pipe, spec, job, content, guidance) as reference_embeds,
        ):
            run = steps_to_run(job.task, steps, job.strength, sigmas)
            switch = embedding_switch(model.encoder, segments, run, family=entry.family, batch=job.batch)
            call: dict[str, Any] = dict(switch.first.kwargs)
            call.update(job.call)
            call.update(reference_embeds)
            generators = [torch.Generator("cpu").manual_seed(s) for s in seeds]
            if job.task == "txt2img":
                call["latents"] = self._noise(model, job, seed, generators, spec.chaos)
            else:
                call["generator"] = generators
                call["strength"] = job.strength
            if blend_sources is not None:
                # One blended latent per image in the batch (diffusers deprecates repeating a single one itself).
                blended = self._blend_latents(model, blend_sources, job.width, job.height)
                call["image"] = blended.repeat(job.batch, 1, 1, 1)
            if sigmas is not None:
                call["sigmas"] = sigmas
            else:
                call["num_inference_steps"] = steps
            images: list[Image.Image]
            if refine is None:
                out = pipe(
                    width=job.width,
                    height=job.height,
                    num_images_per_prompt=job.batch,
                    guidance_scale=guidance,
                    callback_on_step_end=_callback(model, progress, switch),
                    output_type="pil",
                    **call,
                )
                images = list(out.images)
                sampler = type(pipe.scheduler).__name__  # Euler under --stop
            else:
                images = [_refine_tiled(pipe, model, refine[0], call, seed, guidance, progress, switch)]
                sampler = f"{refine[1]} + {type(pipe.scheduler).__name__}"
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
        steps_run = int(getattr(pipe, "_num_timesteps", steps))
        gpu_seconds = time.perf_counter() - gpu_started
        if job.keep is not None:
            images = [_paste_back(img, *job.keep, keep_mask) for img in images]
        return self._result(spec, job, entry, images, seed, seeds, steps_run, guidance, sampler, gpu_seconds, started)

    def _for_render(self, spec: RenderSpec) -> tuple[ModelEntry, bool]:
        try:
            return self.models.registry.for_render(spec.model, spec.draft)
        except RegistryError:
            self.models.entry(spec.model)  # the engine's own error for an unknown model
            raise

    def _noise(
        self, model: LoadedModel, job: _Job, seed: int, generators: list[torch.Generator], chaos: int
    ) -> torch.Tensor:
        """Starting noise: each image's own noise mixed with noise shared by the batch (``chaos_mix``)."""
        factor = model.pipe.vae_scale_factor
        shape = (model.pipe.unet.config.in_channels, job.height // factor, job.width // factor)
        shared = torch.randn(shape, generator=torch.Generator("cpu").manual_seed(seed ^ 0x5EED5EED))
        own = torch.stack([torch.randn(shape, generator=g) for g in generators])
        a = chaos_mix(chaos)
        noise = math.sqrt(1 - a) * shared.unsqueeze(0) + math.sqrt(a) * own
        return noise.to(self.device, self.dtype)

    @torch.no_grad()
    def _blend_latents(self, model: LoadedModel, images: list[Image.Image], width: int, height: int) -> torch.Tensor:
        """The mean of the images' VAE latents (each image cropped to cover width × height)."""
        vae = model.pipe.vae
        processor = model.pipe.image_processor
        latents = []
        for image in images:
            pixels = processor.preprocess(_cover(image, width, height)).to(self.device, vae.dtype)
            latents.append(vae.encode(pixels).latent_dist.mean * vae.config.scaling_factor)
        return torch.cat(latents).mean(dim=0, keepdim=True).to(self.dtype)

    @contextlib.contextmanager
    def _loras(self, model: LoadedModel, refs: list[LoraRef]) -> Iterator[None]:
        """Load the named LoRAs for one render and unload them after (a render never leaks into the next)."""
        if not refs:
            yield
            return
        folder = self.lora_dir
        available = sorted(p.stem for p in folder.glob("*.safetensors")) if folder and folder.is_dir() else []
        for name, _ in refs:
            if name not in available:
                raise UnknownLora(name, str(folder) if folder else "(no LoRA folder configured)", available)
        assert folder is not None
        pipe = model.pipe
        try:
            for name, _ in refs:
                pipe.load_lora_weights(str(folder), weight_name=f"{name}.safetensors", adapter_name=name)
            pipe.set_adapters([n for n, _ in refs], adapter_weights=[w for _, w in refs])
        except (ImportError, ValueError) as exc:
            with contextlib.suppress(Exception):
                pipe.unload_lora_weights()
            raise InvalidInput(f"cannot apply LoRA {', '.join(n for n, _ in refs)}: {exc}") from exc
        try:
            yield
        finally:
            pipe.unload_lora_weights()

    def _result(
        self,
        spec: RenderSpec,
        job: _Job,
        entry: ModelEntry,
        images: list[Image.Image],
        seed: int,
        seeds: tuple[int, ...],
        steps: int,
        guidance: float,
        sampler: str,
        gpu_seconds: float,
        started: float,
    ) -> RenderResult:
        negative_extra = "" if spec.style_raw else HOUSE_NEGATIVE
        texts = tuple(
            parameters(
                spec,
                kind=job.kind,
                seed=s,
                steps=steps,
                guidance=guidance,
                sampler=sampler,
                width=img.width,
                height=img.height,
                strength=job.strength,
                negative_extra=negative_extra,
            )
            for img, s in zip(images, seeds, strict=True)
        )
        meta = spec_json(spec, seed, steps=steps, guidance=guidance)
        pngs = tuple(
            encode_png(img, {PARAMETERS_KEY: t, IMPASTO_KEY: meta}) for img, t in zip(images, texts, strict=True)
        )
        grid = None
        if len(images) > 1:
            sheet = compose_grid(images)
            # The grid's own size (not one image's), so a tool reading the grid file sees what it holds.
            grid_text = texts[0].replace(
                f"Size: {images[0].width}x{images[0].height}", f"Size: {sheet.width}x{sheet.height}"
            )
            grid = encode_png(sheet, {PARAMETERS_KEY: grid_text, IMPASTO_KEY: meta})
        return RenderResult(
            kind=job.kind,
            model=entry.name,
            images=pngs,
            grid=grid,
            seed=seed,
            seeds=seeds,
            width=images[0].width,
            height=images[0].height,
            steps=steps,
            guidance=guidance,
            gpu_seconds=gpu_seconds,
            elapsed_s=time.perf_counter() - started,
            is_tiny=entry.is_tiny,
            parameters=texts,
        )


# --- Helpers ---------------------------------------------------------------------------------------------------------


def _size(spec: RenderSpec) -> tuple[int, int]:
    return spec.width, spec.height


def _validate(spec: RenderSpec, job: _Job) -> None:
    if spec.weird:
        raise InvalidInput(f"--weird {spec.weird} is not supported by this engine; only --weird 0 is allowed")
    if not 1 <= job.batch <= 4:
        raise InvalidInput(f"batch size must be 1 to 4, not {job.batch}")
    for name, value in (("width", job.width), ("height", job.height)):
        if value % 8 or not 64 <= value <= job.max_side:
            raise InvalidInput(f"{name} must be a multiple of 8 between 64 and {job.max_side}, not {value}")
    if not 10 <= spec.stop <= 100:
        raise InvalidInput(f"--stop must be between 10 and 100, not {spec.stop}")
    if spec.quality <= 0:
        raise InvalidInput(f"--quality must be positive, not {spec.quality:g}")


def _clean_prompts(prompts: tuple[tuple[str, float], ...]) -> tuple[tuple[str, float], ...]:
    return tuple((strip_loras(t)[0], w) for t, w in prompts)


def _lora_refs(spec: RenderSpec) -> list[LoraRef]:
    """``spec.loras`` plus the tags in the prompt text; a name given twice keeps the spec's weight."""
    refs = dict(spec.loras)
    for text, _ in spec.prompts:
        for name, weight in strip_loras(text)[1]:
            refs.setdefault(name, weight)
    return list(refs.items())


def _fit8(image: Image.Image) -> Image.Image:
    """Sides rounded to multiples of 8 (the VAE's factor); most images already are."""
    size = (max(64, round(image.width / 8) * 8), max(64, round(image.height / 8) * 8))
    return image if image.size == size else image.resize(size, Image.Resampling.LANCZOS)


def _cover(image: Image.Image, width: int, height: int) -> Image.Image:
    """Scale to cover width × height, then centre-crop."""
    scale = max(width / image.width, height / image.height)
    resized = image.resize((max(width, round(image.width * scale)), max(height, round(image.height * scale))))
    left, top = (resized.width - width) // 2, (resized.height - height) // 2
    return resized.crop((left, top, left + width, top + height))


def _paste_back(image: Image.Image, old: Image.Image, layout: Layout, mask: Image.Image | None) -> Image.Image:
    """Put the old pixels back exactly where they were kept (the VAE round trip would blur them)."""
    out = image.copy()
    out.paste(old, layout.box[:2], mask)
    return out


def _callback(model: LoadedModel, progress: ProgressFn | None, switch: EmbeddingSwitch) -> Any:
    family = model.entry.family

    def on_step_end(pipe: Any, step: int, timestep: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        if progress is not None:
            total = int(getattr(pipe, "_num_timesteps", step + 1))
            progress(Progress(step + 1, total, latent_preview(kwargs["latents"], family)))
        return {**kwargs, **switch.after_step(pipe, step, kwargs)}  # prompt editing: the next step's embeddings

    return on_step_end


def _refine_tiled(
    pipe: Any,
    model: LoadedModel,
    image: Image.Image,
    call: dict[str, Any],
    seed: int,
    guidance: float,
    progress: ProgressFn | None,
    switch: EmbeddingSwitch,
) -> Image.Image:
    """img2img over overlapping tiles of the model's native size, blended with feathered edges.

    Each tile is a native-size render (what the model does best, and memory bounded by the tile, not the image);
    progress counts the steps of all tiles together.
    """
    native = model.entry.native_px
    overlap = max(16, native // 8 // 8 * 8)
    tiles = refine_tiles(image.width, image.height, native, overlap)
    shared = {k: v for k, v in call.items() if k not in ("generator", "image")}
    painted: list[Image.Image] = []
    for index, tile in enumerate(tiles):
        tile_progress = None
        if progress is not None:
            done, report = index, progress

            def tile_progress(p: Progress, done: int = done, report: ProgressFn = report) -> None:
                report(Progress(done * p.total + p.step, len(tiles) * p.total, p.preview))

        crop = image.crop(tile.box)
        out = pipe(
            image=crop,
            width=crop.width,
            height=crop.height,
            num_images_per_prompt=1,
            guidance_scale=guidance,
            generator=[torch.Generator("cpu").manual_seed((seed + index) % MAX_SEED)],
            callback_on_step_end=_callback(model, tile_progress, switch),
            output_type="pil",
            **shared,
        )
        painted.append(out.images[0])
    return blend_tiles(image.size, tiles, painted)


@contextlib.contextmanager
def _references(
    model: LoadedModel,
    pipe: Any,
    spec: RenderSpec,
    job: _Job,
    content: tuple[list[Image.Image], float] | None,
    guidance: float,
) -> Iterator[dict[str, Any]]:
    """The IP-Adapter on for this render when it has references: ``content`` (image prompts, /blend) on every layer
    and ``--sref`` on the style layers. Upscales keep no references (Midjourney's keep the picture, not the style)."""
    style = [] if job.kind == "upscale" else list(spec.style_references)
    if content is None and not style:
        yield {}
        return
    if model.references is None:
        raise InvalidInput(f"model {model.entry.name} has no IP-Adapter in the registry: --sref cannot be used with it")
    images, scale = content if content is not None else ([], 1.0)
    decoded = [decode_image(b, what=f"style reference {i + 1}") for i, b in enumerate(style)]
    guided = guidance > 1 and getattr(pipe.unet.config, "time_cond_proj_dim", None) is None
    with model.references.active(
        model.pipe,
        content=images,
        content_scale=scale,
        style=decoded,
        style_weight=spec.style_weight,
        guided=guided,
    ) as embeds:
        yield embeds


@contextlib.contextmanager
def _oom_guard(job: _Job, device: torch.device) -> Iterator[None]:
    try:
        yield
    except torch.OutOfMemoryError:
        if device.type == "cuda":
            torch.cuda.empty_cache()
        raise EngineOutOfMemory(f"{job.kind} {job.batch}×{job.width}x{job.height}", str(device)) from None


@contextlib.contextmanager
def _circular(pipe: Any, enabled: bool) -> Iterator[None]:
    """--tile: circular padding in every UNet and VAE convolution, so opposite edges continue each other."""
    if not enabled:
        yield
        return
    convs = [m for part in (pipe.unet, pipe.vae) for m in part.modules() if isinstance(m, torch.nn.Conv2d)]
    old = [c.padding_mode for c in convs]
    for conv in convs:
        conv.padding_mode = "circular"
    try:
        yield
    finally:
        for conv, mode in zip(convs, old, strict=True):
            conv.padding_mode = mode


@contextlib.contextmanager
def _vae_tiling(pipe: Any, enabled: bool) -> Iterator[None]:
    """Tiled VAE encode/decode for upscales: a 2048² image decodes in tiles, not in one huge activation."""
    if not enabled:
        yield
        return
    pipe.vae.enable_tiling()
    try:
        yield
    finally:
        pipe.vae.disable_tiling()


@contextlib.contextmanager
def _stopping(pipe: Any, spec: RenderSpec, job: _Job, steps: int) -> Iterator[list[float] | None]:
    """--stop N: run the first N % of the schedule, then jump straight to a clean image (σ = 0).

    Uses Euler (from the model's scheduler config) with the schedule's own sigmas cut short: the last step lands on
    the model's estimate of the finished image at that noise level, which is blurrier — Midjourney's --stop look.
    Upscales ignore --stop, as in Midjourney.
    """
    if spec.stop >= 100 or job.task != "txt2img":
        yield None
        return
    import diffusers

    original = pipe.scheduler
    euler: Any = diffusers.EulerDiscreteScheduler.from_config(original.config)  # type: ignore[no-untyped-call]
    euler.set_timesteps(steps)
    kept = max(1, math.ceil(steps * spec.stop / 100))
    sigmas = [float(s) for s in euler.sigmas[:kept]] + [0.0]
    pipe.scheduler = euler
    try:
        yield sigmas
    finally:
        pipe.scheduler = original
