"""Permutation prompts: ``a {red, green} bird`` → two prompts, groups multiply, groups nest.

One left-to-right pass with an explicit stack (no recursion, so 3000 nested braces cannot overflow Python's stack).
The pass counts the prompts a text would make before building them: the count saturates at ``COUNT_LIMIT`` so a
hostile ``{a,b}{a,b}…`` costs no more than its length, and the strings are only built while they stay within the cap.

Escapes: ``\\,`` is a literal comma, ``\\{`` and ``\\}`` literal braces; every other backslash is kept as written (the
emphasis syntax needs ``\\(``). Whitespace around each alternative is trimmed, as Midjourney does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from impasto.bots.language.errors import PromptError

COUNT_LIMIT = 1_000_000_000  # counts above this are reported as "more than"
# Escapes, braces, commas, and runs of anything else (read in one piece: the loop runs per token, not per char).
_TOKENS = re.compile(r"\\[,{}]?|[{},]|[^\\{},]+")


@dataclass
class _Frame:
    """An open ``{`` group: the sequence it interrupted, and the alternatives finished so far."""

    before: list[str] | None
    before_count: int
    alternatives: list[str] | None = field(default_factory=list)
    count: int = 0


def _saturate(number: int) -> int:
    return min(number, COUNT_LIMIT + 1)


def _product(prefixes: list[str] | None, suffixes: list[str] | None, cap: int) -> list[str] | None:
    if prefixes is None or suffixes is None or len(prefixes) * len(suffixes) > cap:
        return None
    return [p + s for p in prefixes for s in suffixes]


def count_text(count: int) -> str:
    return f"more than {COUNT_LIMIT:,}" if count > COUNT_LIMIT else str(count)


def expand(text: str, cap: int) -> list[str]:
    """All permutations of ``text``; a PromptError when there are more than ``cap`` or the braces do not balance."""
    stack: list[_Frame] = []
    current: list[str] | None = [""]  # expansions of the sequence read so far (None: over the cap, only counting)
    count = 1
    pending: list[str] = []  # literal characters not yet appended to every expansion

    def flush() -> None:
        nonlocal current
        if pending and current is not None:
            literal = "".join(pending)
            current = [c + literal for c in current]
        pending.clear()

    def finish_alternative(frame: _Frame) -> None:
        frame.count = _saturate(frame.count + count)
        if frame.alternatives is not None and current is not None and frame.count <= cap:
            frame.alternatives.extend(c.strip() for c in current)
        else:
            frame.alternatives = None

    for match in _TOKENS.finditer(text):
        token = match[0]
        if token[0] == "\\":
            pending.append(token[1:] if token[1:] in (",", "{", "}") else token)
        elif token == "{":
            flush()
            stack.append(_Frame(current, count))
            current, count = [""], 1
        elif token == "," and stack:
            flush()
            finish_alternative(stack[-1])
            current, count = [""], 1
        elif token == "}":
            if not stack:
                raise PromptError(
                    "a } closes no { in the prompt; write \\} for a literal brace", option=None, value="}"
                )
            flush()
            frame = stack.pop()
            finish_alternative(frame)
            count = _saturate(frame.before_count * frame.count)
            current = _product(frame.before, frame.alternatives, cap)
        else:
            pending.append(token)
    if stack:
        raise PromptError(
            "a { in the prompt is never closed; permutations look like {red, green}, write \\{ for a literal brace",
            option=None,
            value="{",
        )
    flush()
    if current is None or count > cap:
        raise PromptError(
            f"these permutations would make {count_text(count)} jobs; at most {cap} are allowed",
            option=None,
            value=str(count) if count <= COUNT_LIMIT else None,
        )
    return current
