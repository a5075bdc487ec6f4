"""Any text either parses or raises PromptError: never another exception, never a hang."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from impasto.bots.language.errors import PromptError
from impasto.bots.language.parser import parse_blend, parse_imagine, parse_remix
from impasto.bots.language.prefs import Preferences, validate_option, validate_suffix
from impasto.engine.registry import DEFAULT_REGISTRY_PATH, load_registry

T = TypeVar("T")

REGISTRY = load_registry(DEFAULT_REGISTRY_PATH, "v6")
(ORIGINAL,) = parse_imagine("a red fox --ar 16:9 --seed 7 --no snow", registry=REGISTRY)

# Pieces of the language, so random text often comes close to valid syntax and reaches the deeper checks.
PIECES = [
    "{", "}", ",", "\\,", "\\{", "::", "::2", "::-0.5", "::.5", " ", "(", ")", "[", "]", "\\(", ":1.3)",
    "<lora:ink:0.8>", "<lora:", ">", "--", "—", "--ar", " --ar 16:9", " --ar 2:3,", " --no red, blue", " --c 50",
    " --q .5", " --r 2", " --seed 42", " --stop 50", " --style raw", " --raw", " --s 250", " --tile", " --iw 2",
    " --w 10", " --niji", " --v 5", " --v 7", " --fast", " --relax", " --public", " --stealth", " --draft",
    " --sref x", " --zoom 2", " --mine", " --aspcet", "https://e.com/a.png ", "http://x/y.jpg?z=1 ", "https://e.com/p ",
    "a cat", "🦊", "雪", "\u200b", "\u202e", "\t", "\n", "1:4", "9" * 30, "-", ".", "\\",
]  # fmt: skip
TEXT = st.one_of(
    st.text(max_size=300),
    st.lists(st.sampled_from(PIECES), max_size=40).map("".join),
    st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=5)), max_size=60).map("".join),
)
PREFS = Preferences(suffix="--s 300", settings="--relax", options={"mine": "--tile --ar 7:4"})


def attempt(call: Callable[[], T]) -> T | PromptError:
    """The call's result, or the PromptError it raised; any other exception fails the test."""
    try:
        return call()
    except PromptError as exc:
        return exc


SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(text=TEXT, cap=st.integers(min_value=1, max_value=40))
def test_imagine_parses_or_refuses(text: str, cap: int) -> None:
    jobs = attempt(lambda: parse_imagine(text, registry=REGISTRY, preferences=PREFS, max_permutations=cap))
    if isinstance(jobs, PromptError):
        assert jobs.message
        assert "\n" not in jobs.message
        return
    assert 1 <= len(jobs) <= cap
    for job in jobs:
        assert job.width % 64 == 0
        assert job.height % 64 == 0
        assert job.prompts or len(job.image_prompts) >= 2


@SETTINGS
@given(text=TEXT)
def test_remix_parses_or_refuses(text: str) -> None:
    attempt(lambda: parse_remix(ORIGINAL, text, registry=REGISTRY, preferences=PREFS))


@settings(max_examples=100, deadline=None)
@given(text=TEXT, name=st.text(max_size=10))
def test_preferences_validate_or_refuse(text: str, name: str) -> None:
    attempt(lambda: validate_suffix(text))
    attempt(lambda: validate_option(name, text))


@settings(max_examples=100, deadline=None)
@given(urls=st.lists(st.text(max_size=30), max_size=7), dimensions=st.one_of(st.none(), st.text(max_size=10)))
def test_blend_parses_or_refuses(urls: list[str], dimensions: str | None) -> None:
    attempt(lambda: parse_blend(urls, dimensions, registry=REGISTRY))


@pytest.mark.parametrize(
    "text",
    [
        "{" * 3000 + "}" * 3000,
        "{a," * 1500 + "b" + "}" * 1500,
        "{a,b}" * 1200,
        "a" + "::" * 2999,
        "a" + "::" * 10_000,
        "(" * 6000,
        "(" * 1000 + "a" + ":10)" * 1000,
        "[" * 3000 + "]" * 3000,
        "\\" * 6000,
        "a —" * 2000,
        "a --" * 1500,
        "https://e.com/a.png " * 300,
        "x" * 5990 + " --ar",
        ("a lighthouse (dusk:1.2) [fog] <lora:ink:0.5> space::2 ship, " * 120)[:6000],
    ],
)
def test_pathological_inputs(text: str) -> None:
    attempt(lambda: parse_imagine(text, registry=REGISTRY, max_permutations=40))
