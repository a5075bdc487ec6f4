"""Text folding for the prompt policy: what a prompt is turned into before any word is looked for.

Every evasion the policy resists is undone here, and the policy's own words go through the same functions, so a
word and a prompt always meet in the same form:

- Unicode NFKC + ``casefold`` (fullwidth ``ｎｕｄｅ`` and ``ＮＵＤＥ`` become ``nude``);
- format characters (zero-width space/joiner, soft hyphen, bidi controls) and combining marks removed
  (``n̶u̶d̶e̶``, ``núdé``);
- confusable letters folded to Latin with Unicode's confusables data (``confusable-homoglyphs`` ships
  ``confusables.txt`` as JSON): Cyrillic ``а``, Greek ``ο``, mathematical ``𝐧`` …;
- traditional Chinese folded to simplified (``zhconv``), so ``裸體`` meets ``裸体``;
- leetspeak (0→o, 3→e, 4→a, 5→s, 7→t, @→a, $→s) inside tokens that hold a letter or @/$, so a bare number such
  as "13" stays a number for the policy's age patterns; "1" can be "i" or "l", so it stays "1" in the prompt and
  the matcher also lists each word with its i's and l's written as 1 (``one_spellings``);
- letters split by spaces, dots, underscores or dashes joined again (``s e x``, ``s.e.x``, ``s-e-x``).

Repeated letters are not collapsed here: the matcher compares collapsed forms and then checks that the prompt only
*adds* repetitions (``seeexxx`` is ``sex``, but ``bobs`` is not ``boobs``), see ``matching.py``.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources

import zhconv

LEET = str.maketrans({"0": "o", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"})
# "1" reads as "i" (n1pple) or "l" (s1ut), or both in one word ("lo11"): the policy's words are spelled every way.
ONE_LOOKALIKES = "il"
MAX_ONE_POSITIONS = 5  # a word with more i's and l's gets only its all-1 spelling besides its own

# Separators that evasions put between letters; a space only joins runs of single letters ("s e x"), the others also
# join longer pieces ("por.no", "nu_de").
TIGHT_SEPARATORS = "._-·•*~|"


def is_spaceless_char(ch: str) -> bool:
    """Han, kana, Hangul and the CJK symbol blocks: scripts written without spaces, matched by substring."""
    code = ord(ch)
    return (
        0x2E80 <= code <= 0x9FFF  # radicals, CJK symbols, kana, CJK unified ideographs
        or 0xAC00 <= code <= 0xD7AF  # Hangul syllables
        or 0xF900 <= code <= 0xFAFF  # CJK compatibility ideographs
        or 0x20000 <= code <= 0x3FFFF  # CJK extensions B and on
    )


# The same ranges as is_spaceless_char, for one regex pass over a whole text.
_SPACELESS = re.compile("[\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0003ffff]")


@cache
def _confusables_to_latin() -> dict[int, str]:
    """A ``str.translate`` table: every non-ASCII letter Unicode lists as confusable with a Latin letter → that letter.

    Built from the ``confusables.json`` that ``confusable-homoglyphs`` ships (Unicode's confusables.txt). Its own
    ``is_confusable`` answers "is this string mixed-script", not "what does it read as", so the table is ours.
    """
    data = json.loads(resources.files("confusable_homoglyphs").joinpath("confusables.json").read_text("utf-8"))
    table: dict[int, str] = {}
    from_capitals: dict[int, str] = {}
    for char, glyphs in data.items():
        if len(char) != 1 or char.isascii() or is_spaceless_char(char):
            continue
        for glyph in glyphs:
            target = glyph["c"]
            if len(target) == 1 and target.isascii() and target.isalpha():
                table[ord(char)] = target.lower()
                # Text is casefolded before this table applies, so a capital's look-alike ("Χ" is "X") must reach
                # its small letter ("χ") too.
                small = char.casefold()
                if len(small) == 1 and not small.isascii():
                    from_capitals[ord(small)] = target.lower()
                break
    return {**from_capitals, **table}


def fold_chars(text: str) -> str:
    """Character-level folding: NFKC, casefold, no format characters or marks, confusables → Latin, 繁 → 简."""
    text = unicodedata.normalize("NFKC", text).casefold()
    out: list[str] = []
    previous_base = ""
    for ch in unicodedata.normalize("NFD", text):
        category = unicodedata.category(ch)
        if category == "Cf":
            continue
        # Marks go, except after a spaceless-script letter: the kana voicing marks are part of the letter.
        if category in ("Mn", "Me") and not (previous_base and is_spaceless_char(previous_base)):
            continue
        previous_base = ch
        out.append(ch)
    text = unicodedata.normalize("NFC", "".join(out)).translate(_confusables_to_latin())
    if _SPACELESS.search(text):
        text = zhconv.convert(text, "zh-hans")
    return text


# A token: letters and digits of spaced scripts, plus the leet symbols.
_TOKEN = re.compile(r"(?:[^\W_]|[@$])+")
_TIGHT_RUN = re.compile(r"(?:[^\W_]|[@$])+(?:[" + re.escape(TIGHT_SEPARATORS) + r"]+(?:[^\W_]|[@$])+)+")


def _spaced(text: str) -> str:
    """Spaceless-script characters become spaces: the alphabetic matcher only sees spaced scripts."""
    return _SPACELESS.sub(" ", text)


def tokens(text: str) -> list[str]:
    """The words of already-folded text (spaceless scripts left out)."""
    return _TOKEN.findall(_spaced(text))


def _spaced_tokens(spaced: str) -> list[str]:
    return _TOKEN.findall(spaced)


def join_tight(text: str) -> str:
    """ "por.no", "n-u-d-e", "nu_de" → "porno", "nude", "nude"."""
    return _TIGHT_RUN.sub(lambda m: "".join(_TOKEN.findall(m.group(0))), text)


def _join_single_letters(words: list[str], *, keep_article: bool) -> list[str]:
    """Runs of two or more one-letter words are joined: "s e x" → "sex", "s e xxx" → "sexxx".

    With ``keep_article``, a run's leading "a" or "i" stays a word of its own ("a n u d e" → "a nude"); both readings
    are tried.
    """
    out: list[str] = []
    run: list[str] = []
    for word in [*words, ""]:
        if word and len(set(word)) == 1:
            run.append(word)
            continue
        if keep_article and len(run) >= 3 and run[0] in ("a", "i"):
            out.append(run.pop(0))
        if len(run) >= 2:
            out.append("".join(run))
        else:
            out.extend(run)
        run = []
        if word:
            out.append(word)
    return out


# Punctuation that ends a run of split letters: prompt items are separated by commas, split letters are not.
_HARD_BREAK = re.compile(r"[^\w\s" + re.escape(TIGHT_SEPARATORS) + r"@$]+")


def _joined_readings(chars: str) -> list[list[str]]:
    """The split-letter readings: pieces glued at tight separators or not ("n.u.d.e-girl" is "nude girl" only
    when the dash stays a break), each with and without a leading article kept apart."""
    chunks = _HARD_BREAK.split(_spaced(chars))
    readings: list[list[str]] = []
    for tight in (False, True):
        pieces = [_spaced_tokens(join_tight(chunk) if tight else chunk) for chunk in chunks]
        for keep in (False, True):
            readings.append([w for chunk in pieces for w in _join_single_letters(chunk, keep_article=keep)])
    return readings


@lru_cache(maxsize=65536)  # prompts repeat their words; the policy's words are folded once each
def _leet(word: str) -> str:
    if not any(ch.isalpha() or ch in "@$" for ch in word):
        return word  # a bare number stays a number
    return word.translate(LEET)


@dataclass(frozen=True)
class Folded:
    """A text in every form the matcher looks at."""

    chars: str  # fold_chars(text): what regexes see
    word_variants: tuple[tuple[str, ...], ...]  # alphabetic words: as written, joined, each leet reading
    spaceless: str  # folded text without separators, for spaceless-script (CJK) substrings


def fold(text: str) -> Folded:
    chars = fold_chars(text)
    plain = tokens(chars)
    variants: dict[tuple[str, ...], None] = {}
    for words in (plain, *_joined_readings(chars)):
        variants[tuple(_leet(w) for w in words)] = None
    spaceless = "".join(ch for ch in chars if ch.isalnum())
    return Folded(chars=chars, word_variants=tuple(variants), spaceless=spaceless)


def fold_term(term: str) -> tuple[tuple[str, ...], str]:
    """A policy word or phrase: its alphabetic words (leet read as "i") and its spaceless form."""
    chars = fold_chars(term)
    return tuple(_leet(w) for w in tokens(chars)), "".join(ch for ch in chars if ch.isalnum())


def one_spellings(words: tuple[str, ...]) -> set[tuple[str, ...]]:
    """A word with its i's and l's written as 1 in every combination: ("loli",) → loli, 1oli, lo1i, … 1o11."""
    line = " ".join(words)
    positions = [i for i, ch in enumerate(line) if ch in ONE_LOOKALIKES]
    if len(positions) > MAX_ONE_POSITIONS:
        return {words, tuple("".join("1" if ch in ONE_LOOKALIKES else ch for ch in line).split(" "))}
    spellings = set()
    for mask in range(1 << len(positions)):
        chars = list(line)
        for bit, position in enumerate(positions):
            if mask >> bit & 1:
                chars[position] = "1"
        spellings.add(tuple("".join(chars).split(" ")))
    return spellings


def collapse(word: str) -> tuple[str, tuple[int, ...]]:
    """Run-length form: "seeex" → ("sex", (1, 3, 1))."""
    letters: list[str] = []
    runs: list[int] = []
    for ch in word:
        if letters and letters[-1] == ch:
            runs[-1] += 1
        else:
            letters.append(ch)
            runs.append(1)
    return "".join(letters), tuple(runs)
