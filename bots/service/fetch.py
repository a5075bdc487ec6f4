"""Image links in prompts become store keys before a job is queued: the worker reads images only from the store.

The job service calls a ``FetchImage`` for every image prompt link (``/imagine https://…/a.png a cat``, attachments,
``/blend``). ``http_fetcher`` is the production one (httpx, a size limit, a short timeout, and ``safe_fetch``'s rule:
public addresses only unless the allow-list names the host); tests pass their own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx

from impasto.bots.service.safe_fetch import AllowList, UnsafeURL, open_public

FetchImage = Callable[[str], Awaitable[bytes]]


class FetchError(Exception):
    """A link that could not be read as an image; the message is one line for the user."""


def image_extension(data: bytes) -> str:
    """The file type from the first bytes; FetchError for anything but PNG, JPEG, WebP and GIF."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    raise FetchError("is not a PNG, JPEG, WebP or GIF image")


def http_fetcher(*, max_bytes: int, timeout_s: float = 15.0, allow_hosts: AllowList | str | None = None) -> FetchImage:
    """Download one image link with a size cap (``Settings.max_upload_bytes``), from public addresses only.

    ``allow_hosts`` (``Settings.fetch_allow_hosts``) names hosts and networks exempt from the public-only rule.
    """
    allow = allow_hosts if isinstance(allow_hosts, AllowList) else AllowList.parse(allow_hosts)

    async def fetch(url: str) -> bytes:
        try:
            async with open_public(url, allow=allow, timeout_s=timeout_s) as response:
                if response.status_code != 200:
                    raise FetchError(f"answered HTTP {response.status_code}")
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > max_bytes:
                        raise FetchError(f"is larger than {max_bytes // (1024 * 1024)} MB")
                    chunks.append(chunk)
                return b"".join(chunks)
        except UnsafeURL as exc:
            raise FetchError(str(exc)) from None
        except httpx.HTTPError as exc:
            raise FetchError(f"could not be downloaded ({type(exc).__name__})") from exc

    return fetch
