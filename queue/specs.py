"""From a claimed SQL job to the engine's input: a ``RenderSpec`` and the action's input images.

The stored parameters are the command language's ``Job.to_json()``; the action is an ``Action`` wire id, and what it
paints is read from its row in ``impasto.queue.actions`` (never from the string). Torch-free: it only builds the
engine's plain dataclasses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from impasto.engine.spec import ActionInput, Blend, Inpaint, Outpaint, RenderSpec, Upscale, Vary
from impasto.queue.actions import ACTIONS, Action
from impasto.storage.lifecycle import ClaimedJob

GRID_SIZE = 4


class UnrenderableJob(Exception):
    """The stored job cannot be turned into a render (a missing input image, an action that paints nothing)."""


@dataclass(frozen=True)
class RenderWork:
    """Everything the renderer needs for one job."""

    job_id: str
    spec: RenderSpec
    action: ActionInput | None
    # The worker's check of a translated prompt (``screening.translation_screen``): raises to refuse the English
    # before anything is painted. None: nothing checks it (no policy configured).
    screen: Callable[[str], None] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class DescribeWork:
    """A /describe job for the worker's captioner: the image, the model whose describer reads it, and which re-roll
    (🔄) this is: ``offset`` n starts n places lower in each phrase ranking (``engine.describe``)."""

    job_id: str
    model: str
    image: bytes
    offset: int = 0


def is_describe(claimed: ClaimedJob) -> bool:
    return claimed.action == Action.DESCRIBE.value


def build_describe(claimed: ClaimedJob, load: Callable[[str], bytes]) -> DescribeWork:
    """The captioner's input for a claimed /describe job: its one input image, from the store."""
    if not claimed.input_image_keys:
        raise UnrenderableJob(f"describe job {claimed.job_id} names no image")
    key = claimed.input_image_keys[0]
    try:
        image = load(key)
    except (KeyError, FileNotFoundError, ValueError) as exc:
        raise UnrenderableJob(f"the image of job {claimed.job_id} ({key}) is not in the image store") from exc
    offset = claimed.params.get("offset", 0)
    return DescribeWork(
        job_id=claimed.job_id,
        model=claimed.model or str(claimed.params.get("model", "")),
        image=image,
        offset=offset if isinstance(offset, int) and offset >= 0 else 0,
    )


def _prompts(params: dict[str, Any]) -> tuple[tuple[str, float], ...]:
    return tuple((str(p["text"]), float(p.get("weight", 1.0))) for p in params.get("prompts", ()))


def build_spec(
    claimed: ClaimedJob,
    *,
    image_prompts: tuple[bytes, ...] = (),
    batch_size: int = GRID_SIZE,
    style_references: tuple[bytes, ...] = (),
) -> RenderSpec:
    p = claimed.params
    return RenderSpec(
        model=claimed.model or str(p.get("model", "")),
        prompts=_prompts(p),
        width=int(p.get("width", 1024)),
        height=int(p.get("height", 1024)),
        seed=claimed.seed,
        chaos=int(p.get("chaos", 0)),
        stylize=int(p.get("stylize", 100)),
        quality=float(p.get("quality", 1.0)),
        stop=int(p.get("stop", 100)),
        tile=bool(p.get("tile", False)),
        style_raw=p.get("style") == "raw",
        image_weight=float(p.get("image_weight", 1.0)),
        weird=int(p.get("weird", 0)),
        draft=bool(p.get("draft", False)),
        loras=tuple((str(lo["name"]), float(lo.get("weight", 1.0))) for lo in p.get("loras", ())),
        image_prompts=image_prompts,
        style_references=style_references,
        style_weight=int(p.get("style_weight", 100)),
        batch_size=batch_size,
    )


def build_work(claimed: ClaimedJob, load: Callable[[str], bytes]) -> RenderWork:
    """Map a claimed job to the engine call. ``load`` reads a store key (``ImageStore.get``)."""

    def image(key: str, what: str) -> bytes:
        try:
            return load(key)
        except (KeyError, FileNotFoundError, ValueError) as exc:
            raise UnrenderableJob(f"the {what} of job {claimed.job_id} ({key}) is not in the image store") from exc

    def source() -> bytes:
        if claimed.input_image_keys:
            return image(claimed.input_image_keys[0], "source image")
        index = claimed.image_index or 1
        key = claimed.parent_image_keys.get(index)
        if key is None:
            raise UnrenderableJob(f"job {claimed.job_id} names image {index} of its parent, which has no such image")
        return image(key, "source image")

    params = claimed.params
    prompt_images = tuple(image(str(k), "image prompt") for k in params.get("image_prompts", ()))
    # --sref travels with every job born of the prompt (buttons included): the engine applies it where it paints.
    styles = tuple(image(str(k), "style reference") for k in params.get("style_references", ()))
    try:
        row = ACTIONS[Action(claimed.action)]
    except ValueError:
        raise UnrenderableJob(f"job {claimed.job_id} has an unknown action {claimed.action!r}") from None
    spec = build_spec(claimed, image_prompts=prompt_images, style_references=styles)
    work_action: ActionInput | None
    if not row.renders:
        raise UnrenderableJob(f"action {row.label!r} paints nothing; the job service answers it without a worker")
    if row.output == "prompts":
        raise UnrenderableJob(f"job {claimed.job_id} is a /describe job: the captioner reads it (build_describe)")
    if row.action is Action.BLEND:
        extra = params.get("extra") or {}
        dims = extra.get("dimensions", "square")
        if dims not in ("portrait", "square", "landscape"):
            raise UnrenderableJob(f"blend dimensions must be portrait, square or landscape, not {dims!r}")
        keys = claimed.input_image_keys or tuple(str(k) for k in params.get("image_prompts", ()))
        spec = build_spec(claimed, style_references=styles)
        work_action = Blend(images=tuple(image(k, "blend image") for k in keys), dimensions=dims)
    elif row.needs_mask:
        if len(claimed.input_image_keys) < 2:
            raise UnrenderableJob(f"{row.label} job {claimed.job_id} needs an image and a mask")
        work_action = Inpaint(
            image=image(claimed.input_image_keys[0], "source image"),
            mask=image(claimed.input_image_keys[1], "mask"),
        )
    elif row.strength is not None:
        work_action = Vary(image=source(), strength=row.strength)
    elif row.upscale is not None:
        spec = build_spec(claimed, image_prompts=prompt_images, batch_size=1, style_references=styles)
        work_action = Upscale(image=source(), creative=row.upscale == "creative", scale=row.scale)
    elif row.zoom is not None:
        zoom = row.zoom or params.get("zoom")  # 0.0: Custom Zoom, the factor the user typed
        if zoom is None:
            raise UnrenderableJob(f"custom zoom job {claimed.job_id} has no zoom factor")
        work_action = Outpaint(image=source(), zoom=float(zoom))
    elif row.pan is not None:
        work_action = Outpaint(image=source(), pan=row.pan)
    elif row.square:
        work_action = Outpaint(image=source(), square=True)
    else:
        work_action = None  # imagine and reroll: text to image
    return RenderWork(job_id=claimed.job_id, spec=spec, action=work_action)
