"""The command language's ``Job`` → the engine's ``RenderSpec`` (torch-free: bots may import it)."""

from __future__ import annotations

from pathlib import Path

from impasto.bots.language.job import Job
from impasto.engine.registry import Registry
from impasto.engine.spec import RenderSpec


def _round64(x: float) -> int:
    return max(64, round(x / 64) * 64)


def job_to_spec(
    job: Job,
    registry: Registry,
    *,
    model: str | None = None,
    image_prompts: tuple[bytes, ...] = (),
    style_references: tuple[bytes, ...] = (),
) -> RenderSpec:
    """The spec for one job. ``model`` overrides the job's model; the size is rescaled to that model's native size
    (the parser sized the job for its own model), keeping the aspect ratio."""
    name = model or job.model
    width, height = job.width, job.height
    if name != job.model:
        scale = registry.get(name).native_px / registry.get(job.model).native_px
        width, height = _round64(width * scale), _round64(height * scale)
    return RenderSpec(
        model=name,
        prompts=tuple((p.text, p.weight) for p in job.prompts),
        width=width,
        height=height,
        seed=job.seed,
        chaos=job.chaos,
        stylize=job.stylize,
        quality=job.quality,
        stop=job.stop,
        tile=job.tile,
        style_raw=job.style == "raw",
        image_weight=job.image_weight,
        weird=job.weird,
        draft=job.draft,
        loras=tuple((lora.name, lora.weight) for lora in job.loras),
        image_prompts=image_prompts,
        style_references=style_references,
        style_weight=job.style_weight,
    )


def read_local_images(refs: tuple[str, ...], max_bytes: int) -> tuple[bytes, ...]:
    """Image prompts given as local paths (the console has no downloader); anything else is refused."""
    out = []
    for ref in refs:
        path = Path(ref.removeprefix("file://"))
        if not path.is_file():
            raise ValueError(f"image prompt {ref!r}: the console reads local files only")
        if path.stat().st_size > max_bytes:
            raise ValueError(f"image prompt {ref!r} is larger than {max_bytes} bytes")
        out.append(path.read_bytes())
    return tuple(out)
