"""The command language's one error type: a one-line message plus the option and value it is about."""

from __future__ import annotations


class PromptError(ValueError):
    """A prompt, a /blend, a Remix edit or a /prefer value that impasto refuses.

    ``str(err)`` is the one-line message shown to the user. ``option`` is the parameter as it was written, with its
    dashes (``"--ar"``), or None when the error is not about one parameter; ``value`` is the offending value or text.
    """

    def __init__(self, message: str, *, option: str | None = None, value: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.option = option
        self.value = value

    def __str__(self) -> str:
        return self.message

    def to_json(self) -> dict[str, str | None]:
        """The ``{"message", "option", "value"}`` object that ``impasto explain --json`` prints under ``error``."""
        return {"message": self.message, "option": self.option, "value": self.value}


def clip(text: str, limit: int = 80) -> str:
    """Shorten user text quoted in a message, so an error stays one readable line."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
