"""The engine's few error types. The queue translates them at its boundary: retry smaller, refund, or tell the user.

Every message is one line that names what was wrong and what is allowed; callers may show ``str(exc)`` to users.
"""

from __future__ import annotations


class EngineError(Exception):
    """Base of every error the engine raises on purpose."""


class InvalidInput(EngineError):
    """A spec or an input image the engine cannot honour (bad size, bad mask, a parameter it refuses)."""


class UnknownModel(EngineError):
    """The model name is not in the registry."""

    def __init__(self, name: str, available: list[str]) -> None:
        super().__init__(f"unknown model {name!r}; available: {', '.join(available)}")
        self.name = name
        self.available = available


class UnknownLora(EngineError):
    """A ``<lora:name:w>`` names no ``name.safetensors`` in the operator's LoRA folder."""

    def __init__(self, name: str, lora_dir: str, available: list[str]) -> None:
        have = ", ".join(available) if available else "none"
        super().__init__(f"unknown LoRA {name!r}: no {name}.safetensors in {lora_dir} (available: {have})")
        self.name = name
        self.available = available


class UnsafeCheckpoint(EngineError):
    """A pickle checkpoint (.ckpt/.bin/.pt/.pth): loading one runs arbitrary code, so it is refused."""

    def __init__(self, path: str) -> None:
        super().__init__(
            f"refusing to load {path}: pickle checkpoints (.ckpt, .bin, .pt, .pth) can run arbitrary code when "
            "loaded; convert it to .safetensors or use a diffusers folder with safetensors weights"
        )
        self.path = path


class EngineOutOfMemory(EngineError):
    """The device ran out of memory. The render left no state behind; the caller may retry smaller or fail."""

    def __init__(self, what: str, device: str) -> None:
        super().__init__(f"out of memory on {device} while rendering {what}; try a smaller size or fewer images")
        self.what = what
        self.device = device


class Cancelled(EngineError):
    """The progress callback asked to stop; raised out of the render between two denoising steps."""

    def __init__(self, step: int = 0, total: int = 0) -> None:
        super().__init__(f"render cancelled at step {step} of {total}")
        self.step = step
        self.total = total
