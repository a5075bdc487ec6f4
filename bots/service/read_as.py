"""The "read as: …" line under a result whose prompt the worker translated (engine/translate.py).

Users see both texts: the caption keeps the prompt as written, and a line shows the English the model read. This is
the platform-neutral rule (is there a translation worth showing?); each adapter formats and escapes the line its own
way (``bots/telegram/captions.read_as_line``, ``bots/discord/texts.read_as_line``).
"""

from __future__ import annotations


def read_as_text(prompt: str, read_as: str | None) -> str | None:
    """The translation worth showing: None when there is none or it is the prompt itself (nothing translated)."""
    if read_as is None:
        return None
    shown = " ".join(read_as.split())
    if not shown or shown == " ".join(prompt.split()):
        return None
    return shown
