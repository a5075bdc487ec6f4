"""From a claimed SQL job to the engine's input: a ``RenderSpec`` and the action's input images.

The stored parameters are the command language's ``Job.to_json()``; the action is ``"imagine"``, ``"blend"`` or an
``Action`` value from ``impasto.bots.service.actions``. Torch-free: it only builds the engine's plain dataclasses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from impasto.engine.spec import ActionInput, Blend, Inpaint, Outpaint, PanDirection, RenderSpec, Upscale, Vary
from impasto.storage.lifecycle import ClaimedJob

GRID_SIZE = 4

_PAN: dict[str, PanDirection] = {"pl": "left", "pr": "right", "pu": "up", "pd": "down"}
_ZOOM: dict[str, float] = {"z2": 2.0, "z15": 1.5}


class UnrenderableJob(Exception):
    """The stored job cannot be turned into a render (a missing input image, an action that paints nothing)."""


@dataclass(frozen=True)
class RenderWork:
    """Everything the renderer needs for one job."""

    job_id: str
    spec: RenderSpec
    action: ActionInput | None


def _prompts(params: dict[str, Any]) -> tuple[tuple[str, float], ...]:
    return tuple((str(p["text"]), float(p.get("weight", 1.0))) for p in params.get("prompts", ()))


def build_spec(
    claimed: ClaimedJob, *, image_prompts: tuple[bytes, ...] = (), batch_size: int = GRID_SIZE
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
    action = claimed.action
    spec = build_spec(claimed, image_prompts=prompt_images)
    single = build_spec(claimed, image_prompts=prompt_images, batch_size=1)
    work_action: ActionInput | None
    if action in ("imagine", "r"):
        work_action = None
    elif action == "blend":
        extra = params.get("extra") or {}
        dims = extra.get("dimensions", "square")
        if dims not in ("portrait", "square", "landscape"):
            raise UnrenderableJob(f"blend dimensions must be portrait, square or landscape, not {dims!r}")
        keys = claimed.input_image_keys or tuple(str(k) for k in params.get("image_prompts", ()))
        spec = build_spec(claimed)
        work_action = Blend(images=tuple(image(k, "blend image") for k in keys), dimensions=dims)
    elif action in ("v", "vt"):
        work_action = Vary(image=source(), strength="strong")
    elif action == "vs":
        work_action = Vary(image=source(), strength="subtle")
    elif action in ("us", "uc"):
        spec = single
        work_action = Upscale(image=source(), creative=action == "uc")
    elif action in _ZOOM:
        work_action = Outpaint(image=source(), zoom=_ZOOM[action])
    elif action == "zc":
        zoom = params.get("zoom")
        if zoom is None:
            raise UnrenderableJob(f"custom zoom job {claimed.job_id} has no zoom factor")
        work_action = Outpaint(image=source(), zoom=float(zoom))
    elif action in _PAN:
        work_action = Outpaint(image=source(), pan=_PAN[action])
    elif action == "sq":
        work_action = Outpaint(image=source(), square=True)
    elif action == "vr":
        if len(claimed.input_image_keys) < 2:
            raise UnrenderableJob(f"vary region job {claimed.job_id} needs an image and a mask")
        work_action = Inpaint(
            image=image(claimed.input_image_keys[0], "source image"),
            mask=image(claimed.input_image_keys[1], "mask"),
        )
    else:
        raise UnrenderableJob(f"action {action!r} paints nothing; the job service answers it without a worker")
    return RenderWork(job_id=claimed.job_id, spec=spec, action=work_action)
