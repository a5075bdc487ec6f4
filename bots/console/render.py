"""``impasto imagine`` and the actions on image files: upscale, vary, zoom, pan, square, blend, inpaint.

Renders inline on this machine (no Redis, no database). When ``IMPASTO_REDIS_URL`` is set the job goes to the queue
instead (``impasto.bots.console.queued``). The engine (torch) is imported inside the handlers only.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from impasto.bots.config import Settings

if TYPE_CHECKING:
    from impasto.engine.engine import Engine
    from impasto.engine.spec import RenderResult, RenderSpec


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=None, help="model registry name (default: IMPASTO_DEFAULT_MODEL)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: IMPASTO_DATA_DIR/renders)")


def _file_or_job(parser: argparse.ArgumentParser) -> None:
    """Upscale and vary take an image file inline, or ``JOB_ID N`` through the queue (Midjourney's U/V buttons)."""
    parser.add_argument("file", type=Path, help="an image file, or a job id when IMPASTO_REDIS_URL is set")
    parser.add_argument(
        "index", nargs="?", type=int, choices=[1, 2, 3, 4], help="with a job id: which image of its grid"
    )


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("imagine", help="render a 2×2 grid from a prompt", description="Render a prompt inline.")
    p.add_argument("prompt", help='the prompt with its parameters, quoted: "a lighthouse --ar 16:9 --no people"')
    _common(p)
    p.set_defaults(handler=run_imagine)

    p = subparsers.add_parser("upscale", help="2× or 4× upscale an image (subtle by default)")
    _file_or_job(p)
    p.add_argument("--creative", action="store_true", help="more freedom to add detail")
    p.add_argument("--scale", type=int, choices=[2, 4], default=2, help="2 (default) or 4 times the size")
    _common(p)
    p.set_defaults(handler=run_action, action="upscale")

    p = subparsers.add_parser("vary", help="four variations of an image (subtle by default)")
    _file_or_job(p)
    p.add_argument("--strong", action="store_true", help="stronger variation")
    _common(p)
    p.set_defaults(handler=run_action, action="vary")

    p = subparsers.add_parser("zoom", help="zoom out: a larger scene around the image")
    p.add_argument("file", type=Path)
    p.add_argument("factor", nargs="?", type=float, default=2.0, help="1 to 2 (default 2)")
    _common(p)
    p.set_defaults(handler=run_action, action="zoom")

    p = subparsers.add_parser("pan", help="extend the image to one side")
    p.add_argument("file", type=Path)
    p.add_argument("direction", choices=["left", "right", "up", "down"])
    _common(p)
    p.set_defaults(handler=run_action, action="pan")

    p = subparsers.add_parser("square", help="make a wide or tall image square by painting the sides")
    p.add_argument("file", type=Path)
    _common(p)
    p.set_defaults(handler=run_action, action="square")

    p = subparsers.add_parser("blend", help="blend 2–5 images")
    p.add_argument("files", type=Path, nargs="+")
    p.add_argument("--dimensions", choices=["portrait", "square", "landscape"], default="square")
    _common(p)
    p.set_defaults(handler=run_action, action="blend")

    p = subparsers.add_parser("inpaint", help="repaint the white area of MASK (vary region)")
    p.add_argument("file", type=Path)
    p.add_argument("mask", type=Path)
    p.add_argument("prompt", help="what to paint there")
    _common(p)
    p.set_defaults(handler=run_action, action="inpaint")


def _queued(args: argparse.Namespace, settings: Settings) -> int | None:
    """Hand the job to the queue when Redis is configured (and the queue's console module exists)."""
    if not settings.redis_url:
        return None
    try:
        from impasto.bots.console.queued import run_queued  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        print("IMPASTO_REDIS_URL is set but the queue client is not installed; rendering here", file=sys.stderr)
        return None
    result: int = run_queued(args)
    return result


def _engine(settings: Settings) -> Engine:
    from impasto.engine.engine import Engine

    return Engine(
        settings.registry,
        cache_dir=settings.data_dir / "models",
        lora_dir=settings.lora_dir_or_default,
        memory_budget_bytes=settings.model_cache_budget,
    )


def _progress_bar(label: str) -> tuple[Any, Any]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), transient=True)
    task = bar.add_task(label, total=None)

    def on_step(p: Any) -> None:
        bar.update(task, completed=p.step, total=p.total)

    return bar, on_step


def _write(result: RenderResult, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    base = f"{stamp}-{result.kind}-{result.seed}"
    paths = []
    if result.grid is not None:
        paths.append(out / f"{base}-grid.png")
        paths[-1].write_bytes(result.grid)
    for i, png in enumerate(result.images, start=1):
        paths.append(out / f"{base}-{i}.png")
        paths[-1].write_bytes(png)
    return paths


def _report(result: RenderResult, paths: list[Path]) -> None:
    for path in paths:
        print(path)
    seeds = ", ".join(str(s) for s in result.seeds)
    print(
        f"{result.kind}: model {result.model}, seed {result.seed} (images: {seeds}), {result.width}x{result.height}, "
        f"{result.steps} steps, guidance {result.guidance:g}, {result.gpu_seconds:.2f} s"
    )
    if result.paints_noise:
        print(
            f"NOTE: {result.model} is a built-in tiny model with random weights: it paints NOISE. "
            "Use --model with a real model from the registry for pictures.",
            file=sys.stderr,
        )


def _render(settings: Settings, label: str, call: Any) -> RenderResult:
    engine = _engine(settings)
    bar, on_step = _progress_bar(label)
    with bar:
        result: RenderResult = call(engine, on_step)
    return result


def run_imagine(args: argparse.Namespace) -> int:
    settings = Settings()  # type: ignore[call-arg]  # pydantic-settings fills fields from the environment
    queued = _queued(args, settings)
    if queued is not None:
        return queued
    from impasto.bots.language.errors import PromptError
    from impasto.bots.language.parser import parse_imagine
    from impasto.bots.render_spec import job_to_spec, read_local_images
    from impasto.engine.errors import EngineError

    registry = settings.registry
    try:
        jobs = parse_imagine(args.prompt, registry=registry, max_permutations=settings.max_permutations)
        model = args.model
        if model is not None:
            registry.get(model)
    except (PromptError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = args.out or settings.data_dir / "renders"
    for n, job in enumerate(jobs, start=1):
        try:
            images = read_local_images(job.image_prompts, settings.max_upload_bytes)
            styles = read_local_images(job.style_references, settings.max_upload_bytes)
            spec = job_to_spec(job, registry, model=model, image_prompts=images, style_references=styles)
            label = f"imagine {n}/{len(jobs)}" if len(jobs) > 1 else "imagine"
            result = _render(settings, label, lambda e, cb, spec=spec: e.imagine(spec, cb))
        except (EngineError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        _report(result, _write(result, out))
    return 0


def _spec_for_file(data: bytes, settings: Settings, model: str | None, prompt: str | None) -> RenderSpec:
    """The spec of an earlier render, read from the PNG's provenance; the prompt and model may be replaced."""
    from impasto.engine.images import decode_image, png_text
    from impasto.engine.provenance import spec_from_text
    from impasto.engine.spec import RenderSpec

    image = decode_image(data)
    known = {f.name for f in fields(RenderSpec)}
    saved = {k: v for k, v in (spec_from_text(png_text(data)) or {}).items() if k in known}
    saved.pop("image_prompts", None)
    saved.pop("style_references", None)  # a count in the provenance; the images are not in the PNG
    saved.pop("seed", None)  # an action is a new render: a new seed
    saved.setdefault("prompts", ())
    if prompt is not None:
        saved["prompts"] = _prompt_segments(prompt, settings)
    name = model or saved.get("model")
    if not name or name not in settings.registry.models:
        name = settings.registry.default
    saved["model"] = name
    saved["width"], saved["height"] = image.size
    saved.setdefault("batch_size", 4)
    return RenderSpec(**saved)


def _prompt_segments(prompt: str, settings: Settings) -> tuple[tuple[str, float], ...]:
    from impasto.bots.language.parser import parse_imagine

    job = parse_imagine(prompt, registry=settings.registry, max_permutations=1)[0]
    return tuple((p.text, p.weight) for p in job.prompts)


def _read(path: Path, settings: Settings) -> bytes:
    if not path.is_file():
        raise ValueError(f"{path} is not a file")
    if path.stat().st_size > settings.max_upload_bytes:
        raise ValueError(f"{path} is larger than {settings.max_upload_bytes} bytes (IMPASTO_MAX_UPLOAD_BYTES)")
    return path.read_bytes()


def run_action(args: argparse.Namespace) -> int:
    settings = Settings()  # type: ignore[call-arg]
    queued = _queued(args, settings)
    if queued is not None:
        return queued
    from impasto.bots.language.errors import PromptError
    from impasto.engine.errors import EngineError

    action: str = args.action
    if getattr(args, "index", None) is not None:
        print(
            "error: an image number goes with a job id (IMPASTO_REDIS_URL set); inline, pass the single image file",
            file=sys.stderr,
        )
        return 2
    try:
        if args.model is not None:
            settings.registry.get(args.model)
        files = args.files if action == "blend" else [args.file]
        datas = [_read(f, settings) for f in files]
        spec = _spec_for_file(datas[0], settings, args.model, getattr(args, "prompt", None))
        if action == "blend":
            from dataclasses import replace

            native = settings.registry.get(spec.model).native_px
            spec = replace(spec, width=native, height=native)
        call = _action_call(args, datas, spec)
        result = _render(settings, action, call)
    except (EngineError, PromptError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    _report(result, _write(result, args.out or settings.data_dir / "renders"))
    return 0


def _action_call(args: argparse.Namespace, datas: list[bytes], spec: RenderSpec) -> Any:
    action: str = args.action
    image = datas[0]
    if action == "upscale":
        return lambda e, cb: e.upscale(spec, image, creative=args.creative, scale=args.scale, progress=cb)
    if action == "vary":
        return lambda e, cb: e.variation(spec, image, "strong" if args.strong else "subtle", cb)
    if action == "zoom":
        return lambda e, cb: e.outpaint(spec, image, zoom=args.factor, progress=cb)
    if action == "pan":
        return lambda e, cb: e.outpaint(spec, image, pan=args.direction, progress=cb)
    if action == "square":
        return lambda e, cb: e.outpaint(spec, image, square=True, progress=cb)
    if action == "blend":
        return lambda e, cb: e.blend(spec, datas, args.dimensions, cb)
    if action == "inpaint":
        if not args.mask.is_file():
            raise ValueError(f"{args.mask} is not a file")
        mask = args.mask.read_bytes()
        return lambda e, cb: e.inpaint(spec, image, mask, cb)
    raise ValueError(f"unknown action {action}")
