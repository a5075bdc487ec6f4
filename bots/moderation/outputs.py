"""What happens to a picture the worker's classifier flagged, and to progress previews, in a given channel.

Pure decisions over a server's stored settings, for the delivery code: a flagged result outside NSFW channels is held
for review, posted as a spoiler (Discord ``SPOILER_`` file name, Telegram ``has_spoiler``) or removed — never a silent
black square; inside NSFW channels it is delivered as it is unless the server chose otherwise. Outside NSFW channels
progress previews are blurred until the final picture has passed.
"""

from __future__ import annotations

import io
from typing import Literal, cast

from PIL import Image, ImageFilter

from impasto.storage.moderation import ServerModeration

OutputAction = Literal["deliver", "spoiler", "hold", "remove"]
PREVIEW_BLUR_RADIUS_FRACTION = 0.06  # of the preview's longer side: shapes stay readable, content does not
MAX_PREVIEW_PIXELS = 4096 * 4096  # previews are small; anything bigger is not one of ours


def is_nsfw_place(stored: ServerModeration, *, nsfw_channel: bool) -> bool:
    """Discord's channel flag, or (Telegram has none) the chat's "NSFW allowed" setting."""
    return nsfw_channel or stored.nsfw_chat


def output_action(stored: ServerModeration, *, flagged: bool, nsfw_channel: bool) -> OutputAction:
    if not flagged:
        return "deliver"
    choice = stored.flagged_output_nsfw if is_nsfw_place(stored, nsfw_channel=nsfw_channel) else stored.flagged_output
    return cast(OutputAction, choice)


def blur_previews(stored: ServerModeration, *, nsfw_channel: bool) -> bool:
    return not is_nsfw_place(stored, nsfw_channel=nsfw_channel)


def blurred_png(data: bytes) -> bytes:
    """A progress preview blurred for a channel not marked NSFW (PNG in, PNG out; size-capped)."""
    with Image.open(io.BytesIO(data)) as image:
        if image.width * image.height > MAX_PREVIEW_PIXELS:
            raise ValueError(f"preview of {image.width}×{image.height} px is larger than a preview can be")
        rgb = image.convert("RGB")
    radius = max(2.0, max(rgb.size) * PREVIEW_BLUR_RADIUS_FRACTION)
    out = io.BytesIO()
    rgb.filter(ImageFilter.GaussianBlur(radius)).save(out, format="PNG")
    return out.getvalue()
