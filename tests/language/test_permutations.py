"""Permutation prompts, with the examples of Midjourney's "Permutation Prompts" page."""

from __future__ import annotations

import pytest
from language_helpers import refused

from impasto.bots.language.errors import PromptError
from impasto.bots.language.parser import parse_imagine
from impasto.bots.language.permutations import expand
from impasto.engine.registry import Registry


def texts(text: str, registry: Registry, cap: int = 40) -> list[str]:
    return [job.display for job in parse_imagine(text, registry=registry, max_permutations=cap)]


def test_one_group(registry: Registry) -> None:
    assert texts("a {red, green, yellow} bird", registry) == ["a red bird", "a green bird", "a yellow bird"]


def test_several_groups_are_a_cartesian_product(registry: Registry) -> None:
    assert texts("a {red, green} bird in the {jungle, desert}", registry) == [
        "a red bird in the jungle",
        "a red bird in the desert",
        "a green bird in the jungle",
        "a green bird in the desert",
    ]


def test_nesting(registry: Registry) -> None:
    result = texts(
        "A {sculpture, painting} of a {seagull {on a pier, on a beach}, poodle {on a sofa, in a truck}}", registry
    )
    assert len(result) == 8
    assert result[:4] == [
        "A sculpture of a seagull on a pier",
        "A sculpture of a seagull on a beach",
        "A sculpture of a poodle on a sofa",
        "A sculpture of a poodle in a truck",
    ]


def test_escaped_comma(registry: Registry) -> None:
    assert texts(r"{red, pastel \, yellow} bird", registry) == ["red bird", "pastel , yellow bird"]
    assert texts(r"a bird\, a cat", registry) == ["a bird, a cat"]


def test_escaped_braces_are_literal(registry: Registry) -> None:
    assert texts(r"a \{curly\} sign", registry) == ["a {curly} sign"]


def test_inside_parameters(registry: Registry) -> None:
    jobs = parse_imagine("a bird --ar {3:2, 1:1, 2:3, 1:2}", registry=registry)
    assert [j.aspect_ratio for j in jobs] == ["3:2", "1:1", "2:3", "1:2"]
    jobs = parse_imagine("a bird --{v 5, niji}", registry=registry)
    assert [j.model for j in jobs] == ["v5", "niji6"]
    jobs = parse_imagine("a bird --c {0, 50}", registry=registry)
    assert [j.chaos for j in jobs] == [0, 50]


def test_in_weights_and_images(registry: Registry) -> None:
    jobs = parse_imagine("{https://e.com/a.png, https://e.com/b.png} space::{1, 2} ship", registry=registry)
    assert [(j.image_prompts[0][-5:], j.prompts[0].weight) for j in jobs] == [
        ("a.png", 1.0),
        ("a.png", 2.0),
        ("b.png", 1.0),
        ("b.png", 2.0),
    ]


def test_cap_says_how_many(registry: Registry) -> None:
    err = refused("a {1, 2, 3, 4, 5} bird", registry)
    assert "would make 5 jobs" in str(err)
    assert "at most 4" in str(err)
    assert len(parse_imagine("a {1, 2, 3, 4, 5} bird", registry=registry, max_permutations=5)) == 5
    err = refused("{a,b}" * 100, registry)
    assert "more than 1,000,000,000" in str(err)


def test_exponential_input_is_refused_fast() -> None:
    with pytest.raises(PromptError, match="would make"):
        expand("{a,b}" * 1200, 40)


def test_unbalanced_braces(registry: Registry) -> None:
    assert "never closed" in str(refused("a {red, green bird", registry))
    assert "closes no {" in str(refused("a red} bird", registry))


def test_deep_nesting_does_not_recurse() -> None:
    assert expand("{" * 2999 + "x" + "}" * 2999, 4) == ["x"]
    assert expand("{" * 2999 + "}" * 2999, 4) == [""]


def test_empty_alternatives() -> None:
    assert expand("a {, very} big cat", 4) == ["a  big cat", "a very big cat"]
