"""Finding Chinese, Japanese and Korean text inside a prompt, and the spans a translator may touch.

Pure Python (no torch): ``impasto translate`` and the worker share it. A prompt is cut into spans; a *run* is a
stretch of CJK text (with the digits and spaces inside it) that a translator gets on its own. Everything else stays
byte for byte: English words, ASCII commas (a tag separator: ``人物, 文字`` is two runs, as two ``--no`` items are),
A1111 emphasis brackets and weights (``(红色的帽子:1.3)`` → the run ``红色的帽子``), prompt-editing colons and
``|``, ``<lora:…>`` and other ``<…>`` tags (a LoRA may have a Chinese file name) and links.

The three scripts are counted apart: kana means Japanese, hangul Korean, Han characters alone Chinese. A run of Han
characters only, in a prompt that also holds kana, is Japanese (kanji): its sentence is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Language = Literal["zh", "ja", "ko"]
LANGUAGE_NAMES: dict[str, str] = {"zh": "Chinese", "ja": "Japanese", "ko": "Korean", "en": "English"}

_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f\u3005\u3007"
_KANA = "\u3040-\u309f\u30a0-\u30ff\u31f0-\u31ff\uff66-\uff9f"
_HANGUL = "\uac00-\ud7af\u1100-\u11ff\u3130-\u318f\ua960-\ua97f\ud7b0-\ud7ff"
# CJK punctuation and full-width forms belong to a run (a Chinese sentence keeps its ，and 。) but name no language.
_PUNCT = "\u3000-\u3004\u3008-\u303f\uff01-\uff65\u2018\u2019\u201c\u201d\u00b7"
_CJK = f"[{_HAN}{_KANA}{_HANGUL}{_PUNCT}]"
_RUN = re.compile(rf"\d*{_CJK}(?:[ \t\d]*{_CJK})*")
_PROTECTED = re.compile(r"<[^<>]*>|https?://\S+", re.IGNORECASE)
_HAN_RE = re.compile(f"[{_HAN}]")
_KANA_RE = re.compile(f"[{_KANA}]")
_HANGUL_RE = re.compile(f"[{_HANGUL}]")


@dataclass(frozen=True)
class ScriptCounts:
    """Characters of each script: Han (Chinese characters, also Japanese kanji), kana, hangul."""

    han: int = 0
    kana: int = 0
    hangul: int = 0

    def __add__(self, other: ScriptCounts) -> ScriptCounts:
        return ScriptCounts(self.han + other.han, self.kana + other.kana, self.hangul + other.hangul)

    @property
    def any(self) -> bool:
        return bool(self.han or self.kana or self.hangul)


def count_scripts(text: str) -> ScriptCounts:
    return ScriptCounts(len(_HAN_RE.findall(text)), len(_KANA_RE.findall(text)), len(_HANGUL_RE.findall(text)))


def run_language(run: str, *, kana_in_prompt: bool = False) -> Language | None:
    """The language of one run; None for a run of punctuation only (it is left as written)."""
    counts = count_scripts(run)
    if counts.kana:
        return "ja"
    if counts.hangul:
        return "ko"
    if counts.han:
        return "ja" if kana_in_prompt else "zh"
    return None


@dataclass(frozen=True)
class Span:
    """A piece of prompt text. ``language`` None: kept as written; else a run for the translator."""

    text: str
    language: Language | None = None


def split_runs(text: str, *, kana_in_prompt: bool = False) -> list[Span]:
    """``text`` as spans whose texts join back to ``text`` exactly."""
    spans: list[Span] = []

    def keep(piece: str) -> None:
        if not piece:
            return
        if spans and spans[-1].language is None:
            spans[-1] = Span(spans[-1].text + piece)
        else:
            spans.append(Span(piece))

    def scan(piece: str) -> None:
        at = 0
        for m in _RUN.finditer(piece):
            keep(piece[at : m.start()])
            language = run_language(m.group(0), kana_in_prompt=kana_in_prompt)
            if language is None:
                keep(m.group(0))
            else:
                spans.append(Span(m.group(0), language))
            at = m.end()
        keep(piece[at:])

    at = 0
    for m in _PROTECTED.finditer(text):
        scan(text[at : m.start()])
        keep(m.group(0))
        at = m.end()
    scan(text[at:])
    return spans


def has_kana(texts: list[str] | tuple[str, ...]) -> bool:
    return any(_KANA_RE.search(t) for t in texts)


def fit_into(translation: str, before: str, after: str) -> str:
    """A translated run, shaped to sit where the run was: no sentence-final full stop, a space against a letter.

    Translation models write sentences ("A cat."); prompts are phrases and tag lists, so the full stop goes and a
    title-case first word is lowered (CLIP lower-cases its input anyway, and "read as" should look like a prompt).
    """
    text = translation.strip().rstrip(".。").strip()
    first = text.split(" ", 1)[0] if text else ""
    if first[:1].isupper() and (len(first) == 1 or first[1:].islower()):
        text = text[0].lower() + text[1:]
    if before and (before[-1].isalnum() or before[-1] in ")]"):
        text = " " + text
    if after and (after[0].isalnum() or after[0] in "(["):
        text += " "
    return text
