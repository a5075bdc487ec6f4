"""/describe in the core: which image a describe job reads, and its one-line refusals.

The entry points live on ``JobService`` (``describe``, and ``press`` for the buttons under the four prompts); this
module holds what they share: the image check for a link's bytes (the adapters check their uploads the same way) and
the prompts a button names. Every line here comes from the catalogs (``describe.*``) in English: the adapters show
refusals in the user's language (``bots/i18n/refusals.localize``).
"""

from __future__ import annotations

import io
import warnings

from PIL import Image

from impasto.bots.i18n.catalog import t
from impasto.bots.service.errors import InvalidRequest
from impasto.bots.service.views import JobView
from impasto.queue.actions import Action

#: Larger pictures are refused before anything is stored (as the adapters refuse uploads): 40 megapixels.
MAX_PIXELS = 40_000_000


def check_image_bytes(data: bytes, what: str) -> None:
    """Decode ``data`` fully with Pillow's decompression-bomb guard as an error; ``InvalidRequest`` naming ``what``
    (a link, shortened) when it is not a PNG, JPEG, WebP or GIF picture of a sane size."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                if image.format not in ("PNG", "JPEG", "WEBP", "GIF"):
                    raise InvalidRequest(t("describe.refusal.not_an_image", "en", what=what))
                if image.width * image.height > MAX_PIXELS:
                    raise InvalidRequest(_too_large(what))
                image.load()
    except InvalidRequest:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InvalidRequest(_too_large(what)) from None
    except (OSError, ValueError, SyntaxError):
        raise InvalidRequest(t("describe.refusal.not_an_image", "en", what=what)) from None


def _too_large(what: str) -> str:
    return t("describe.refusal.too_large", "en", what=what, megapixels=MAX_PIXELS // 1_000_000)


def chosen_prompts(view: JobView, action: Action, index: int | None) -> list[str]:
    """The prompts a button under a /describe result imagines: the one it names (1–4), or all four."""
    prompts = list(view.described)
    if len(prompts) != 4:
        raise InvalidRequest(t("describe.refusal.no_prompts", "en", job=view.job_id))
    if action is Action.DESCRIBE_ALL:
        return prompts
    if index is None or not 1 <= index <= 4:
        raise InvalidRequest(t("describe.refusal.bad_index", "en", index=index if index is not None else "none"))
    return [prompts[index - 1]]


def described_image(view: JobView, index: int | None) -> tuple[str, int]:
    """The store key of a job's picture to describe: image ``index`` (1–4), else its only picture, else its grid."""
    if index is not None:
        image = view.image(index)
    else:
        singles = [i for i in view.images if i.index >= 1]
        image = singles[0] if len(singles) == 1 else (view.image(0) or (singles[0] if singles else None))
    if image is None:
        raise InvalidRequest(t("describe.refusal.no_job_image", "en", job=view.job_id))
    return image.key, image.index
