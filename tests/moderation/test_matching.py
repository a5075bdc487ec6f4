"""Property tests: an evasion of any listed word is still that word; a listed word inside a longer word is not."""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from impasto.queue.moderation.folding import collapse, fold, fold_chars
from impasto.queue.moderation.policy import NO_SERVER, Policy, load_policy
from impasto.queue.moderation.verdict import check_prompt, find

POLICY = load_policy()
# Single ASCII words the shipped policy refuses on their own (no exception phrase contains them).
EXCEPTED = {w for e in POLICY.matcher.entries if e.kind == "except" for w in re.findall(r"[a-z]+", e.term)}
WORDS = sorted(
    {
        e.term
        for e in POLICY.matcher.entries
        if e.kind == "word" and not e.regex and re.fullmatch(r"[a-z]{3,}", e.term) and e.term not in EXCEPTED
    }
)
INNOCENT = ["lighthouse", "a", "cat", "at", "dusk", "painting", "of", "the", "sea", "blue", "castle", "bread"]

# Look-alikes from Unicode's confusables (Cyrillic, Greek) and the mathematical alphabets NFKC folds.
LOOKALIKE = {"a": "аα𝐚", "c": "с𝐜", "e": "е𝐞", "i": "іι𝐢", "o": "оο𝐨", "p": "рρ𝐩", "s": "ѕ𝐬", "x": "хχ𝐱", "y": "у𝐲"}
LEET = {"o": "0", "i": "1", "l": "1", "e": "3", "a": "4@", "s": "5$", "t": "7"}
INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad"]
MARKS = ["\u0301", "\u0308", "\u0336", "\u0323"]


@st.composite
def evasion(draw: st.DrawFn) -> tuple[str, str]:
    word = draw(st.sampled_from(WORDS))
    letters: list[str] = []
    for ch in word:
        choice = draw(st.sampled_from(["keep", "upper", "fullwidth", "lookalike", "leet", "mark", "repeat"]))
        if choice == "upper":
            ch = ch.upper()
        elif choice == "fullwidth":
            ch = chr(ord(ch) - 0x21 + 0xFF01)
        elif choice == "lookalike" and ch in LOOKALIKE:
            ch = draw(st.sampled_from(LOOKALIKE[ch]))
        elif choice == "leet" and ch in LEET:
            ch = draw(st.sampled_from(LEET[ch]))
        elif choice == "mark":
            ch = ch + draw(st.sampled_from(MARKS))
        elif choice == "repeat":
            ch = ch * draw(st.integers(2, 5))
        letters.append(ch)
    joiner = draw(st.sampled_from(["", "", "invisible", " ", ".", "_", "-"]))
    if joiner == "invisible":
        text = "".join(c + draw(st.sampled_from(INVISIBLE)) for c in letters)
    else:
        text = joiner.join(letters)
    # Filler words of two letters or more ("a" is tested on its own below: "a n u d e woman").
    filler = [w for w in INNOCENT if len(w) > 1]
    before = " ".join(draw(st.lists(st.sampled_from(filler), max_size=3)))
    after = " ".join(draw(st.lists(st.sampled_from(filler), max_size=3)))
    return word, f"{before} {text}, {after}"


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(evasion())
def test_an_evaded_word_is_still_found(case: tuple[str, str]) -> None:
    word, text = case
    terms = {h.entry.term for h in find(POLICY, NO_SERVER, [text])}
    assert word in terms, (word, text)


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(WORDS),
    st.text(alphabet="bdfghjkmnpqrvwz", min_size=1, max_size=3),
    st.text(alphabet="bdfghjkmnpqrvwz", min_size=0, max_size=3),
)
def test_a_word_inside_a_longer_word_is_not_found(word: str, prefix: str, suffix: str) -> None:
    """The Scunthorpe property: letters glued to either side make another word (no repeat of an edge letter)."""
    if prefix[-1] == word[0] or (suffix and suffix[0] == word[-1]):
        return
    text = f"a {prefix}{word}{suffix} in the rain"
    terms = {h.entry.term for h in find(POLICY, NO_SERVER, [text])}
    assert word not in terms, text


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(INNOCENT), min_size=1, max_size=8), st.sampled_from([" ", ", ", " . ", "-"]))
def test_innocent_words_in_any_order_and_spacing_pass(words: list[str], joiner: str) -> None:
    verdict = check_prompt(POLICY, NO_SERVER, joiner.join(words), nsfw_channel=False)
    assert verdict.allowed, verdict


@given(st.text(max_size=200))
@settings(max_examples=300, deadline=None)
def test_any_text_folds_without_error_and_folding_is_stable(text: str) -> None:
    once = fold_chars(text)
    assert fold_chars(once) == once
    fold(text)


def test_split_letters_after_an_article_are_joined_without_it(policy: Policy) -> None:
    for text in ("a n u d e woman", "i s e x", "a photo of a p.o.r.n star"):
        assert not check_prompt(policy, NO_SERVER, text, nsfw_channel=False).allowed, text
    # Items separated by commas are not one split word.
    assert check_prompt(policy, NO_SERVER, "a, s, e, x, y, z chart", nsfw_channel=False).allowed


def test_repetition_may_be_added_but_not_taken_away(policy: Policy) -> None:
    assert collapse("seeexxx") == ("sex", (1, 3, 3))
    assert not check_prompt(policy, NO_SERVER, "boooooobs", nsfw_channel=False).allowed
    assert check_prompt(policy, NO_SERVER, "bobs", nsfw_channel=False).allowed
    assert check_prompt(policy, NO_SERVER, "a kil", nsfw_channel=False).allowed


def test_a_bare_number_is_not_leetspeak_but_a_number_in_a_word_is(policy: Policy) -> None:
    assert fold("13 year old").word_variants[0][0] == "13"
    assert "sex" in fold("s3x").word_variants[0]
    for text in ("s1ut", "n1pples", "lo11", "1o1i", "k1ll myse1f"):
        assert not check_prompt(policy, NO_SERVER, text, nsfw_channel=False).allowed, text
    assert check_prompt(policy, NO_SERVER, "sl1t", nsfw_channel=False).allowed  # 1 is i or l, not u


def test_chinese_is_folded_to_simplified_and_kana_keeps_its_marks() -> None:
    assert fold_chars("裸體 強姦") == "裸体 强奸"
    assert fold_chars("がぱ") == "がぱ"
