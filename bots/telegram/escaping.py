"""User text in Telegram HTML: escaped, and cut to fit before escaping so no entity is ever split.

Every caption and message this bot sends uses ``parse_mode=HTML``; anything a user typed (prompts, names, error
messages that quote input) goes through :func:`text` so ``<a href=…>`` in a prompt stays literal text.
"""

from __future__ import annotations

import html

CAPTION_LIMIT = 1024  # Bot API: a photo caption is 0–1024 characters after entity parsing
MESSAGE_LIMIT = 4096


def text(value: str, max_chars: int | None = None) -> str:
    """Escape ``value`` for HTML parse mode, first shortening it to ``max_chars`` visible characters."""
    if max_chars is not None and len(value) > max_chars:
        value = value[: max(max_chars - 1, 0)].rstrip() + "…"
    return html.escape(value, quote=True)


def user_link(user_id: int | str, display_name: str) -> str:
    """A mention that works without a @username; the id is digits only, the name is escaped."""
    uid = str(user_id)
    if not uid.lstrip("-").isdigit():
        return text(display_name or uid, 64)
    return f'<a href="tg://user?id={uid}">{text(display_name or uid, 64)}</a>'


def code(value: str, max_chars: int | None = None) -> str:
    return f"<code>{text(value, max_chars)}</code>"
