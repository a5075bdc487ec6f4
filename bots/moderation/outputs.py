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

from impasto.storage.moderation import Review, ServerModeration

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


#: What a finished job's flagged picture becomes when it is posted again (``/show``, ``/describe`` of it, U1–U4 of its
#: grid, ✉️): as it is, behind a spoiler, refused while its review is pending ("held"), or refused ("withheld").
RepostAction = Literal["deliver", "spoiler", "held", "withheld"]


def repost_action(stored: ServerModeration, *, flagged: bool, review: Review, nsfw_channel: bool) -> RepostAction:
    """The place's setting (``stored``: the server it is posted in again, ``nsfw_channel``: that channel), past the
    moderators' review of the job's result: a pending review shows nothing anywhere, a rejection nothing ever, an
    approval passes a place that holds such pictures for review; a place that removes them never gets them again."""
    if not flagged:
        return "deliver"
    if review == "awaiting":
        return "held"
    if review == "rejected":
        return "withheld"
    action = output_action(stored, flagged=True, nsfw_channel=nsfw_channel)
    if action == "hold":
        return "deliver" if review == "approved" else "withheld"
    if action == "remove":
        return "withheld"
    return action


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
