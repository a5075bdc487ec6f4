"""CJK detection and the prompt structure around translated runs (pure: a dictionary stands in for the model).

The tiny translation model itself is tested in test_translate.py; here the translator is a plain function so that
each structural rule is checked on its own.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from impasto.engine.cjk import Span, count_scripts, fit_into, run_language, split_runs
from impasto.engine.registry import ModelEntry, TranslatorEntry
from impasto.engine.translate import left_note, read_prompts, reading_text

WORDS = {
    "一只在月光下睡觉的橘猫": "A ginger cat sleeping in the moonlight.",
    "红色的帽子": "Red hat",
    "蓝色的帽子": "Blue hat",
    "一只猫": "A cat",
    "人物": "people",
    "文字": "text",
    "水墨": "ink wash",
    "灯塔": "lighthouse",
    "猫": "cat",
    "狗": "dog",
}
calls: list[list[str]] = []


def dictionary(runs: list[str]) -> list[str]:
    calls.append(list(runs))
    return [WORDS.get(r, f"<{r}?>") for r in runs]


def read(*prompts: tuple[str, float], reads: tuple[str, ...] = ("en",), languages: tuple[str, ...] = ("zh",)):  # type: ignore[no-untyped-def]
    return read_prompts(tuple(prompts), reads=reads, languages=languages, translate=dictionary)


def test_scripts_are_counted_apart() -> None:
    assert count_scripts("一只猫 a cat") == count_scripts("一只猫")
    c = count_scripts("一只猫")
    assert (c.han, c.kana, c.hangul) == (3, 0, 0)
    c = count_scripts("月の下で眠る猫")
    assert (c.han, c.kana, c.hangul) == (4, 3, 0)
    c = count_scripts("달빛 아래 고양이")
    assert (c.han, c.kana, c.hangul) == (0, 0, 7)
    assert not count_scripts("a lighthouse, 16:9").any


def test_language_of_a_run() -> None:
    assert run_language("一只猫") == "zh"
    assert run_language("眠る猫") == "ja"
    assert run_language("고양이") == "ko"
    assert run_language("猫", kana_in_prompt=True) == "ja"  # kanji in a Japanese prompt
    assert run_language("，。") is None  # punctuation names no language


@pytest.mark.parametrize(
    ("text", "runs"),
    [
        ("一只猫, cinematic lighting", ["一只猫"]),
        ("(红色的帽子:1.3)", ["红色的帽子"]),
        ("人物, 文字", ["人物", "文字"]),  # an ASCII comma separates tags
        ("一只猫，坐在窗台上。", ["一只猫，坐在窗台上。"]),  # a Chinese sentence keeps its own punctuation
        ("3只猫 on a roof", ["3只猫"]),
        ("[猫:狗:0.5]", ["猫", "狗"]),  # prompt editing: each side on its own
        ("<lora:水墨:0.8> 灯塔", ["灯塔"]),  # a LoRA's Chinese file name is never translated
        ("https://例子.cn/猫.png 猫", ["猫"]),
        ("a lighthouse --ar 16:9", []),
    ],
)
def test_runs(text: str, runs: list[str]) -> None:
    spans = split_runs(text)
    assert "".join(s.text for s in spans) == text
    assert [s.text for s in spans if s.language] == runs


@given(st.text(alphabet=st.sampled_from(list("猫狗月光のが고양이 ,.:()[]<>|abc123:\\-")), max_size=40))
def test_spans_always_join_back_to_the_text(text: str) -> None:
    assert "".join(s.text for s in split_runs(text)) == text


def test_fit_into_makes_a_phrase_and_spaces_it_from_letters() -> None:
    assert fit_into("A cat.", "", ", cinematic") == "a cat"
    assert fit_into("Tokyo tower", "at ", "") == "tokyo tower"
    assert fit_into("NASA rocket", "", "") == "NASA rocket"
    assert fit_into("red hat", "cinematic", "lighting") == " red hat "


def test_a_whole_chinese_prompt_is_translated() -> None:
    r = read(("一只在月光下睡觉的橘猫", 1.0))
    assert r.translated
    assert r.prompts == (("a ginger cat sleeping in the moonlight", 1.0),)


def test_weights_per_segment_and_each_no_item() -> None:
    r = read(("一只猫", 2.0), ("红色的帽子", 1.0), ("人物", -0.5), ("文字", -0.5))
    assert r.prompts == (("a cat", 2.0), ("red hat", 1.0), ("people", -0.5), ("text", -0.5))
    assert reading_text(r.prompts) == "a cat::2 red hat::1 --no people, text"


def test_emphasis_lora_and_english_survive() -> None:
    r = read(("(红色的帽子:1.3), 一只猫, cinematic lighting <lora:水墨:0.8>", 1.0))
    assert r.prompts == (("(red hat:1.3), a cat, cinematic lighting <lora:水墨:0.8>", 1.0),)


def test_mixed_text_translates_only_the_chinese() -> None:
    r = read(("cinematic一只猫wearing a hat", 1.0))
    assert r.prompts == (("cinematic a cat wearing a hat", 1.0),)


def test_english_prompts_are_untouched_and_the_translator_is_not_called() -> None:
    calls.clear()
    r = read(("a lighthouse at dusk", 1.0), ("fog", -0.5))
    assert not r.translated
    assert r.prompts == (("a lighthouse at dusk", 1.0), ("fog", -0.5))
    assert calls == []


def test_a_run_is_asked_once_per_prompt() -> None:
    calls.clear()
    read(("猫", 1.0), ("猫, 狗", 1.0), ("猫", -0.5))
    assert calls == [["猫", "狗"]]


def test_a_model_that_reads_chinese_gets_it_as_written() -> None:
    calls.clear()
    r = read(("一只猫", 1.0), reads=("en", "zh"))
    assert not r.translated
    assert r.prompts == (("一只猫", 1.0),)
    assert r.left == ()
    assert calls == []


def test_languages_the_translator_does_not_read_are_left_and_named() -> None:
    r = read(("一只猫", 1.0), ("고양이", 1.0))
    assert r.prompts == (("a cat", 1.0), ("고양이", 1.0))
    assert r.left == (Span("고양이", "ko"),)
    entry = ModelEntry("v6", "sdxl", "x", 1024, 30, 7.0, translator=TranslatorEntry("Helsinki-NLP/opus-mt-zh-en"))
    assert left_note(r.left, entry) == (
        "Korean text left as written (고양이): model v6 reads English, and its translator reads Chinese only"
    )
    # Japanese: the kana make the whole prompt Japanese, kanji runs included.
    r = read(("月の下で眠る猫", 1.0), ("猫", -0.5))
    assert not r.translated
    assert [s.language for s in r.left] == ["ja", "ja"]


def test_no_translator_leaves_everything_and_says_so() -> None:
    r = read_prompts((("一只猫", 1.0),), reads=("en",), languages=(), translate=None)
    assert not r.translated
    entry = ModelEntry("v6", "sdxl", "x", 1024, 30, 7.0)
    assert left_note(r.left, entry) == (
        "Chinese text left as written (一只猫): model v6 reads English, and no translator is configured for it"
    )
