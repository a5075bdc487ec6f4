"""Finding a policy's words in a folded prompt: whole words for spaced scripts, substrings for CJK, and regexes.

One Aho-Corasick automaton (``pyahocorasick``) per script family finds every word of the policy in one pass, so a
list of thousands of words costs no more per prompt than a list of ten.

Spaced scripts match whole words only: the automaton's keys and the text are words joined by single spaces with a
space at each end, so a key can only start and end on word boundaries ("Scunthorpe" holds no banned word, "sexton"
is not "sex"). Keys are in run-length-collapsed form ("seeex" and "sex" are both "sex"); a hit then counts only if
every letter run in the prompt is at least as long as in the word, so repetition can be added ("seeexxx") but not
taken away ("bobs" is not "boobs", "kil" is not "kill").

Spaceless scripts (Han, kana, Hangul) have no word boundaries to keep, so their words are substrings of the text
with every separator removed ("裸 体" and "裸.体" are "裸体").
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import ahocorasick

from impasto.queue.moderation.folding import Folded, collapse, fold_term, is_spaceless_char, join_tight, one_spellings

# What a listed word does: "word" refuses (per the category's choice); "with" only counts together with another
# category's hit (the minors rule); "except" cancels the category's hits that it covers ("al gore", "blue tit").
Kind = Literal["word", "with", "except"]
Source = Literal["policy", "server"]


class PolicyError(ValueError):
    """The policy file or a moderator's word is unusable; the message names the file, key or word."""


@dataclass(frozen=True)
class Entry:
    category: str
    term: str  # as the policy or the moderator wrote it
    kind: Kind
    source: Source = "policy"
    regex: bool = False


@dataclass(frozen=True)
class Hit:
    """One policy entry found in a prompt. ``span`` locates it within one folded variant, for exceptions."""

    entry: Entry
    variant: int
    span: tuple[int, int]


def _automaton(keys: dict[str, list[Any]]) -> Any:
    automaton = ahocorasick.Automaton()
    for key, payloads in keys.items():
        automaton.add_word(key, (key, payloads))
    if keys:
        automaton.make_automaton()
    return automaton


class Matcher:
    """The compiled form of a list of entries."""

    def __init__(self, entries: Iterable[Entry]) -> None:
        words: dict[str, list[tuple[Entry, tuple[tuple[int, ...], ...]]]] = {}
        spaceless: dict[str, list[Entry]] = {}
        self._regexes: list[tuple[Entry, re.Pattern[str]]] = []
        self.entries: tuple[Entry, ...] = tuple(entries)
        for entry in self.entries:
            if entry.regex:
                try:
                    self._regexes.append((entry, re.compile(entry.term)))
                except re.error as exc:
                    raise PolicyError(f"{entry.category}: regex {entry.term!r} does not compile: {exc}") from exc
                continue
            term_words, term_spaceless = fold_term(entry.term)
            if any(is_spaceless_char(ch) for ch in term_spaceless):
                spaceless.setdefault(term_spaceless, []).append(entry)
                continue
            if not term_words:
                raise PolicyError(f"{entry.category}: {entry.term!r} has no letters to match")
            forms = one_spellings(term_words)
            if entry.kind == "except":
                # The prompt's joined variant reads "mole-rat" as "molerat"; the exception must hold there too.
                forms.add(fold_term(join_tight(entry.term.casefold()))[0])
            for form in forms:
                collapsed = [collapse(w) for w in form]
                key = " " + " ".join(c for c, _ in collapsed) + " "
                words.setdefault(key, []).append((entry, tuple(r for _, r in collapsed)))
        self._words = _automaton(words)  # type: ignore[arg-type]
        self._spaceless = _automaton(spaceless)  # type: ignore[arg-type]
        self._has_words = bool(words)
        self._has_spaceless = bool(spaceless)

    def find(self, folded: Folded) -> list[Hit]:
        hits: list[Hit] = []
        if self._has_words:
            for variant, text_words in enumerate(folded.word_variants):
                hits.extend(self._find_words(variant, text_words))
        if self._has_spaceless and folded.spaceless:
            for end, (key, entries) in self._spaceless.iter(folded.spaceless):
                span = (end - len(key) + 1, end + 1)
                hits.extend(Hit(entry, -1, span) for entry in entries)
        for entry, pattern in self._regexes:
            texts = [folded.chars, *(" ".join(words) for words in folded.word_variants)]
            for variant, text in enumerate(texts):
                found = pattern.search(text)
                if found:
                    hits.append(Hit(entry, -2 - variant, found.span()))
                    break
        return hits

    def _find_words(self, variant: int, text_words: tuple[str, ...]) -> list[Hit]:
        collapsed = [collapse(w) for w in text_words]
        starts: dict[int, int] = {}  # character offset of a word in `line` → its index
        parts: list[str] = []
        offset = 1
        for index, (letters, _) in enumerate(collapsed):
            starts[offset] = index
            parts.append(letters)
            offset += len(letters) + 1
        line = " " + " ".join(parts) + " "
        hits: list[Hit] = []
        for end, (key, payloads) in self._words.iter(line):
            first = starts[end - len(key) + 2]
            count = key.count(" ") - 1
            for entry, term_runs in payloads:
                text_runs = [runs for _, runs in collapsed[first : first + count]]
                if all(
                    all(have >= need for have, need in zip(have_runs, need_runs, strict=True))
                    for have_runs, need_runs in zip(text_runs, term_runs, strict=True)
                ):
                    hits.append(Hit(entry, variant, (first, first + count)))
        return hits


def without_exceptions(hits: list[Hit]) -> list[Hit]:
    """Drop the hits an exception of the same category covers in the same variant ("al gore" keeps "gore" out)."""
    exceptions = [h for h in hits if h.entry.kind == "except"]
    kept: list[Hit] = []
    for hit in hits:
        if hit.entry.kind == "except":
            continue
        covered = any(
            e.entry.category == hit.entry.category
            and e.variant == hit.variant
            and e.span[0] <= hit.span[0]
            and hit.span[1] <= e.span[1]
            for e in exceptions
        )
        if not covered:
            kept.append(hit)
    return kept
