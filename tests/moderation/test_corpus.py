"""The shipped policy against the corpus: every evasion refused under its category, every innocent prompt allowed."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from impasto.queue.moderation.policy import NO_SERVER, Policy
from impasto.queue.moderation.verdict import check_prompt

CORPUS = tomllib.loads((Path(__file__).parent / "corpus.toml").read_text("utf-8"))


@pytest.mark.parametrize(("text", "category"), CORPUS["refused"])
def test_refused_in_a_channel_not_marked_nsfw(policy: Policy, text: str, category: str) -> None:
    verdict = check_prompt(policy, NO_SERVER, text, nsfw_channel=False)
    assert not verdict.allowed, text
    assert verdict.category == category, (text, verdict)
    # The user's line names the category, never what matched nor the prompt.
    label = policy.categories[category].label
    assert verdict.reason in {
        f"this prompt was refused: {label} is only allowed in channels marked NSFW",
        f"this prompt was refused: {label} is not allowed on this server",
        f"this prompt was refused: {label} is never allowed",
    }


@pytest.mark.parametrize("text", CORPUS["allowed"])
def test_innocent_prompts_pass(policy: Policy, text: str) -> None:
    verdict = check_prompt(policy, NO_SERVER, text, nsfw_channel=False)
    assert verdict.allowed, (text, verdict)


def test_the_corpus_is_big_enough_to_mean_something() -> None:
    assert len(CORPUS["refused"]) >= 80
    assert len(CORPUS["allowed"]) >= 60
    assert {c for _, c in CORPUS["refused"]} >= {"sexual", "minors", "gore", "hate", "self_harm"}
