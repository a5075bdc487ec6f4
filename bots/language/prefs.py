"""A user's preferences as inputs of the parser: ``/prefer suffix``, ``/prefer option set`` and ``/settings``.

Precedence, highest first: parameters in the prompt > the /prefer suffix > the /settings defaults > built-in defaults.
``--no`` is the exception: the prompt's and the suffix's lists are combined, since both name things to avoid.
A custom option ``--NAME`` is replaced by its value where it appears in the prompt's parameters; what it expands to
counts as written in the prompt (so ``--mine`` = ``--ar 7:4`` next to ``--ar 1:1`` is a duplicate).
Storing preferences belongs to storage; the rules for what is valid live here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from impasto.bots.language.errors import PromptError
from impasto.bots.language.parameters import OPTIONS, REFUSED, parse_parameters

MAX_OPTIONS = 20
MAX_PREFERENCE_CHARS = 1000
_OPTION_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")
# The Apple em-dash: iOS turns "--" into "—" as people type.
_EM_DASH = re.compile(r"(?<!\S)—(?=[A-Za-z{])")


def normalize_dashes(text: str) -> str:
    """``—ar`` at the start of a word is ``--ar``; an em-dash elsewhere (``a cat — black``) stays text."""
    return _EM_DASH.sub("--", text)


def validate_suffix(text: str) -> str:
    """Check a ``/prefer suffix`` (parameters only; empty resets) and return it normalised.

    ``--v``/``--niji`` names are checked against the registry when a prompt uses the suffix, not here.
    """
    text = " ".join(normalize_dashes(text).split())
    if not text:
        return ""
    if len(text) > MAX_PREFERENCE_CHARS:
        raise PromptError(
            f"the suffix is {len(text)} characters; at most {MAX_PREFERENCE_CHARS} allowed", option=None, value=None
        )
    if not text.startswith("--"):
        raise PromptError(
            f"a suffix takes parameters only (such as --ar 16:9 --no text), not {text.split()[0]!r}",
            option=None,
            value=text,
        )
    if any(c in text for c in "{}"):
        raise PromptError("a suffix cannot hold permutations ({…})", option=None, value=text)
    if "::" in text:
        raise PromptError("a suffix takes parameters only; weights (::) belong in the prompt", option=None, value=text)
    parse_parameters(text, repeat_cap=40)
    return text


def validate_option(name: str, value: str) -> None:
    """Check ``/prefer option set NAME VALUE``: NAME a new word, VALUE parameters only (empty deletes the option)."""
    bare = name[2:] if name.startswith("--") else name
    if not _OPTION_NAME.fullmatch(bare):
        raise PromptError(
            f"option name {name!r} is not allowed; use 1–32 lowercase letters, digits or _ starting with a letter",
            option=name,
            value=value,
        )
    if bare in OPTIONS or bare in REFUSED:
        raise PromptError(
            f"--{bare} is a Midjourney parameter; choose another name for your option", option=name, value=value
        )
    validate_suffix(value)


@dataclass(frozen=True)
class Preferences:
    suffix: str = ""
    options: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    settings: str = ""  # the /settings panel as parameter text, e.g. "--style raw --s 250 --relax"

    def __post_init__(self) -> None:
        if len(self.options) > MAX_OPTIONS:
            raise PromptError(
                f"{len(self.options)} custom options; at most {MAX_OPTIONS} allowed", option=None, value=None
            )
        # Names are stored without dashes; accept "--mine" too.
        normalized = {(k[2:] if k.startswith("--") else k).lower(): v for k, v in self.options.items()}
        object.__setattr__(self, "options", MappingProxyType(normalized))
