"""A1111-style emphasis and LoRA tags: kept in the text, reported parsed."""

from __future__ import annotations

import pytest
from language_helpers import one, refused

from impasto.bots.language.emphasis import parse_emphasis, parse_loras
from impasto.bots.language.job import Emphasis, Lora
from impasto.engine.registry import Registry


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a (word) b", (Emphasis("word", 1.1),)),
        ("a ((word)) b", (Emphasis("word", 1.21),)),
        ("a (((word))) b", (Emphasis("word", 1.331),)),
        ("a (word:1.3) b", (Emphasis("word", 1.3),)),
        ("a (word: 0.5 ) b", (Emphasis("word", 0.5),)),
        ("a [word] b", (Emphasis("word", 0.9091),)),
        ("a [[word]] b", (Emphasis("word", 0.8264),)),
        ("a ((big (red:1.5)) cat) b", (Emphasis("big", 1.21), Emphasis("red", 1.815), Emphasis("cat", 1.1))),
        (r"a \(literal\) b", ()),
        (r"a \[literal\] b", ()),
        ("plain text", ()),
        ("(unclosed word", (Emphasis("unclosed word", 1.1),)),
        ("a (word:0) b", (Emphasis("word", 0.0),)),
    ],
)
def test_emphasis(text: str, expected: tuple[Emphasis, ...]) -> None:
    assert parse_emphasis(text) == expected


def test_bad_emphasis_weight(registry: Registry) -> None:
    err = refused("a (word:1.2.3) cat", registry)
    assert "emphasis weight" in str(err)
    assert "0 to 10" in str(refused("a (word:11) cat", registry))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<lora:ink:0.8>", (Lora("ink", 0.8),)),
        ("<lora:ink>", (Lora("ink", 1.0),)),
        ("<LORA:Ink_Style-v2.1:-0.5>", (Lora("Ink_Style-v2.1", -0.5),)),
        ("a <lora:a:1> and <lora:b:.5>", (Lora("a", 1.0), Lora("b", 0.5))),
        ("no tags here <lora", ()),
    ],
)
def test_loras(text: str, expected: tuple[Lora, ...]) -> None:
    assert parse_loras(text) == expected


@pytest.mark.parametrize(
    "tag", ["<lora:../../etc/passwd:1>", "<lora:a/b:1>", "<lora: :1>", "<lora:ink:x>", "<lora:ink:20>"]
)
def test_bad_loras_are_refused(tag: str, registry: Registry) -> None:
    err = refused(f"a cat {tag}", registry)
    assert err.option == "<lora>"


def test_kept_in_text_and_reported(registry: Registry) -> None:
    job = one("a (red:1.3) fox <lora:ink:0.8> in [fog]::2 a forest --no (blur)", registry)
    assert job.prompts[0].text == "a (red:1.3) fox <lora:ink:0.8> in [fog]"
    assert job.prompts[0].weight == 2.0
    assert job.loras == (Lora("ink", 0.8),)
    assert job.emphasis == (Emphasis("red", 1.3), Emphasis("fog", 0.9091), Emphasis("blur", 1.1))


def test_pathological_nesting_is_linear(registry: Registry) -> None:
    assert one("(" * 5999 + "a", registry).emphasis[0].text == "a"
    assert one("[" * 5999 + "a", registry).emphasis == (Emphasis("a", 0.0),)
    assert one("(" * 1000 + "a" + ":10)" * 1000, registry).emphasis[0].weight > 1e300


def test_prompt_editing_brackets_are_not_emphasis(registry: Registry) -> None:
    assert parse_emphasis("a [cat:dog:0.5] b") == ()
    assert parse_emphasis("a [(cat:1.3)|dog] b") == (Emphasis("cat", 1.3),)
    assert parse_emphasis("a [[big]:small:3] b") == (Emphasis("big", 0.9091),)
    job = one("a [red::0.5] cat::2 [blue|green] sky --no [blur:4]", registry)
    assert [(p.text, p.weight) for p in job.prompts] == [
        ("a [red::0.5] cat", 2.0),
        ("[blue|green] sky", 1.0),
        ("[blur:4]", -0.5),
    ]
    assert job.emphasis == ()
    assert [(p.text, p.weight) for p in one("a [cat] b::2 c", registry).prompts] == [("a [cat] b", 2.0), ("c", 1.0)]
