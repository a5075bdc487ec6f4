"""A1111 prompt editing and alternation: which text the model reads at each denoising step. Torch-free.

``[from:to:when]`` reads ``from`` up to step ``when`` and ``to`` after it; ``[to:when]`` adds ``to`` after ``when``;
``[from::when]`` drops ``from`` after ``when``. ``when`` below 1 is a fraction of the steps, from 1 up a step number.
``[a|b|c]`` alternates every step (a, b, c, a, …). Anything else in square brackets stays as it is: ``[word]`` is
emphasis (÷1.1), read later by the emphasis parser. Steps count from 1, as in A1111.

A1111 parses this with a lark grammar; this is a small recursive-descent port of the same grammar (no new
dependency for twenty lines of grammar) that also keeps ``(…)`` emphasis groups intact, so ``[(cat:1.2):dog:5]``
works and colons inside parentheses never split a schedule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_NUMBER = re.compile(r"\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+))\s*")


@dataclass(frozen=True)
class _Scheduled:
    before: tuple[_Node, ...]
    after: tuple[_Node, ...]
    when: float


@dataclass(frozen=True)
class _Alternate:
    options: tuple[tuple[_Node, ...], ...]


_Node = str | _Scheduled | _Alternate


#: Schedules nested deeper than this are read as plain text (they mean nothing; the evaluation is recursive).
MAX_NESTING = 32


@dataclass
class _Frame:
    """An open ``(`` or ``[`` (or the whole text, ``kind`` ""): what has been read inside it so far."""

    kind: str
    parts: list[list[_Node]]
    separators: list[str]
    nesting: int = 0  # the deepest schedule inside


def _parse(text: str) -> list[_Node]:
    """The text as plain strings and schedules. Iterative with an explicit stack: 6000 nested brackets are fine."""
    stack = [_Frame("", [[]], [])]
    pos = 0
    while pos < len(text):
        char, top = text[pos], stack[-1]
        if char == "\\":
            top.parts[-1].append(text[pos : pos + 2])
            pos += 2
            continue
        if char in "([":
            stack.append(_Frame(char, [[]], []))
        elif char == ")" and top.kind == "(":
            stack.pop()
            _add(stack[-1], ["(", *top.parts[0], ")"], top.nesting)
        elif char in ":|" and top.kind == "[":
            top.separators.append(char)
            top.parts.append([])
        elif char == "]" and top.kind == "[":
            stack.pop()
            nodes, nesting = _bracket(top)
            _add(stack[-1], nodes, nesting)
        else:
            top.parts[-1].append(char)
        pos += 1
    while len(stack) > 1:  # unclosed brackets: kept as text, as A1111's emphasis reads them (to the end)
        top = stack.pop()
        _add(stack[-1], [top.kind, *_joined(top.parts, top.separators)], top.nesting)
    return _merged(stack[0].parts[0])


def _add(frame: _Frame, nodes: list[_Node], nesting: int) -> None:
    frame.parts[-1].extend(nodes)
    frame.nesting = max(frame.nesting, nesting)


def _merged(nodes: list[_Node]) -> list[_Node]:
    """Adjacent strings joined into one."""
    out: list[_Node] = []
    for node in nodes:
        if isinstance(node, str) and out and isinstance(out[-1], str):
            out[-1] += node
        else:
            out.append(node)
    return out


def _bracket(frame: _Frame) -> tuple[list[_Node], int]:
    """A closed ``[…]``: a schedule, an alternation, or plain emphasis brackets (kept as text for later)."""
    parts = [_merged(p) for p in frame.parts]
    separators = frame.separators
    if frame.nesting < MAX_NESTING:
        if separators and set(separators) == {"|"}:
            return [_Alternate(tuple(tuple(p) for p in parts))], frame.nesting + 1
        if separators and set(separators) == {":"} and len(parts) in (2, 3):
            last = parts[-1]
            number = _NUMBER.fullmatch(last[0]) if len(last) == 1 and isinstance(last[0], str) else None
            if number is not None:
                before = tuple(parts[0]) if len(parts) == 3 else ()
                after = tuple(parts[1]) if len(parts) == 3 else tuple(parts[0])
                return [_Scheduled(before, after, float(number[1]))], frame.nesting + 1
    return ["[", *_joined(parts, separators), "]"], frame.nesting


def _joined(parts: list[list[_Node]], separators: list[str]) -> list[_Node]:
    out: list[_Node] = list(parts[0])
    for separator, part in zip(separators, parts[1:], strict=False):
        out.append(separator)
        out.extend(part)
    return out


def _step_of(when: float, steps: int) -> int:
    return min(steps, int(when * steps) if when < 1 else int(when))


def _boundaries(nodes: tuple[_Node, ...] | list[_Node], steps: int, out: set[int]) -> None:
    for node in nodes:
        if isinstance(node, _Scheduled):
            out.add(_step_of(node.when, steps))
            _boundaries(node.before, steps, out)
            _boundaries(node.after, steps, out)
        elif isinstance(node, _Alternate):
            out.update(range(1, steps + 1))
            for option in node.options:
                _boundaries(option, steps, out)


def _text_at(nodes: tuple[_Node, ...] | list[_Node], step: int, steps: int) -> str:
    out: list[str] = []
    for node in nodes:
        if isinstance(node, str):
            out.append(node)
        elif isinstance(node, _Scheduled):
            out.append(_text_at(node.before if step <= _step_of(node.when, steps) else node.after, step, steps))
        else:
            out.append(_text_at(node.options[(step - 1) % len(node.options)], step, steps))
    return "".join(out)


def has_schedule(text: str) -> bool:
    """Whether ``text`` holds prompt editing or alternation (most prompts do not: they skip all of this)."""
    if "[" not in text:
        return False
    nodes = _parse(text)
    return any(not isinstance(n, str) for n in nodes)


def prompt_schedule(text: str, steps: int) -> list[tuple[int, str]]:
    """``(last_step, text)`` pairs in step order: ``text`` is what the model reads up to and including ``last_step``.

    The last pair ends at ``steps``. Consecutive steps that read the same text are merged.
    """
    steps = max(1, steps)
    nodes = _parse(text)
    ends: set[int] = {steps}
    _boundaries(nodes, steps, ends)
    schedule: list[tuple[int, str]] = []
    for end in sorted(e for e in ends if 1 <= e <= steps):
        current = _text_at(nodes, end, steps)
        if schedule and schedule[-1][1] == current:
            schedule[-1] = (end, current)
        else:
            schedule.append((end, current))
    return schedule


def all_variants(text: str) -> list[str]:
    """Every text the schedule can produce, whatever the step count (for reporting emphasis and checking syntax).

    Evaluated at the step numbers that matter for a large step count: each schedule's both sides, each alternative.
    """
    seen: dict[str, None] = {}
    for _, variant in prompt_schedule(text, 1000):
        seen.setdefault(variant, None)
    return list(seen)
