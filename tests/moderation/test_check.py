"""The verdict: per-server choices and words, the minors rule no server lifts, what of a job is checked, bad files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from impasto.bots.language.parser import parse_imagine
from impasto.bots.moderation.check import check_jobs
from impasto.engine.registry import DEFAULT_REGISTRY_PATH, load_registry
from impasto.queue.moderation.matching import PolicyError
from impasto.queue.moderation.policy import NO_SERVER, Policy, ServerRules, load_policy
from impasto.queue.moderation.verdict import check_prompt, check_texts

ALLOW_ALL = ServerRules(choices=dict.fromkeys(("sexual", "gore", "hate", "self_harm", "minors"), "allow"))


def test_defaults_sexual_and_gore_only_in_nsfw_channels_hate_and_self_harm_nowhere(policy: Policy) -> None:
    for text in ("a nude figure", "a decapitated statue"):
        assert not check_prompt(policy, NO_SERVER, text, nsfw_channel=False).allowed
        assert check_prompt(policy, NO_SERVER, text, nsfw_channel=True).allowed
    for text in ("heil hitler", "kill myself"):
        verdict = check_prompt(policy, NO_SERVER, text, nsfw_channel=True)
        assert not verdict.allowed
        assert verdict.reason is not None
        assert verdict.reason.endswith("is not allowed on this server")


def test_a_server_choice_changes_only_that_server(policy: Policy) -> None:
    strict = ServerRules(choices={"sexual": "block"})
    relaxed = ServerRules(choices={"gore": "allow", "self_harm": "allow"})
    assert not check_prompt(policy, strict, "a nude figure", nsfw_channel=True).allowed
    assert check_prompt(policy, NO_SERVER, "a nude figure", nsfw_channel=True).allowed
    assert check_prompt(policy, relaxed, "a decapitated statue", nsfw_channel=False).allowed
    assert check_prompt(policy, relaxed, "suicide forest", nsfw_channel=False).allowed
    assert not check_prompt(policy, NO_SERVER, "suicide forest", nsfw_channel=False).allowed


def test_no_server_can_allow_or_unlist_the_minors_rule(policy: Policy) -> None:
    lifted = ServerRules(
        choices={**ALLOW_ALL.choices, "minors": "allow"}, removed=frozenset({"loli", "child", "nude", "sex"})
    )
    for text in ("loli", "a nude child", "12 year old, sex"):
        verdict = check_prompt(policy, lifted, text, nsfw_channel=True)
        assert not verdict.allowed, text
        assert verdict.category == "minors"
        assert verdict.reason == "this prompt was refused: sexual content involving minors is never allowed"


def test_minor_words_with_sexual_words_are_refused_even_where_both_alone_pass(policy: Policy) -> None:
    assert check_prompt(policy, ALLOW_ALL, "a child at the beach", nsfw_channel=True).allowed
    assert check_prompt(policy, ALLOW_ALL, "a nude at the beach", nsfw_channel=True).allowed
    verdict = check_prompt(policy, ALLOW_ALL, "a nude child at the beach", nsfw_channel=True)
    assert (verdict.allowed, verdict.category, verdict.rule) == (False, "minors", "combination")
    assert set(verdict.matched) == {"child", "nude"}
    # Across the texts of one request as well (a permutation or a suffix carrying the other half).
    split = check_texts(policy, ALLOW_ALL, ["a child at the beach", "nude"], nsfw_channel=True)
    assert split.category == "minors"


def test_server_words_refuse_only_on_their_server(policy: Policy) -> None:
    mine = ServerRules(added=frozenset({("custom", "clown"), ("gore", "zombie bite")}))
    verdict = check_prompt(policy, mine, "a sad Clown", nsfw_channel=True)
    assert (verdict.allowed, verdict.category, verdict.rule, verdict.matched) == (
        False,
        "custom",
        "server word",
        ("clown",),
    )
    assert verdict.reason == "this prompt was refused: a word this server does not allow is not allowed on this server"
    assert not check_prompt(policy, mine, "a z0mbie b1te", nsfw_channel=False).allowed
    assert check_prompt(policy, mine, "a zombie bite", nsfw_channel=True).allowed  # gore: NSFW only
    assert check_prompt(policy, NO_SERVER, "a sad clown", nsfw_channel=False).allowed  # another server


def test_a_removed_word_no_longer_refuses_and_its_spellings_go_with_it(policy: Policy) -> None:
    art_server = ServerRules(removed=frozenset({"Nude", "naked"}))
    assert check_prompt(policy, art_server, "a ｎｕｄｅ study in charcoal", nsfw_channel=False).allowed
    assert not check_prompt(policy, art_server, "porn", nsfw_channel=False).allowed
    assert not check_prompt(policy, NO_SERVER, "a nude study", nsfw_channel=False).allowed


def test_the_strictest_refusal_is_reported(policy: Policy) -> None:
    verdict = check_prompt(policy, NO_SERVER, "a nude figure, heil hitler", nsfw_channel=False)
    assert verdict.category == "hate"  # blocked outranks NSFW-only


@pytest.fixture(scope="module")
def registry():  # type: ignore[no-untyped-def]
    return load_registry(DEFAULT_REGISTRY_PATH, "v6")


def test_a_job_is_checked_on_its_positive_text_and_links_not_on_no_or_negative_weights(
    policy: Policy, registry: object
) -> None:
    def verdict(prompt: str) -> bool:
        jobs = parse_imagine(prompt, registry=registry, max_permutations=4)  # type: ignore[arg-type]
        return check_jobs(policy, NO_SERVER, jobs, nsfw_channel=False).allowed

    assert verdict("a portrait --no nude, gore")
    assert verdict("a portrait:: nude::-0.5")
    assert not verdict("a portrait:: nude::0.5")
    assert not verdict("a {cat, nude} portrait")  # one permutation is enough
    assert not verdict("https://example.com/n.u.d.e-girl.png a portrait")


def test_a_broken_policy_file_is_refused_with_what_is_wrong(tmp_path: Path) -> None:
    cases = {
        'version = 2\n[categories.x]\nwords = ["a"]': "version = 1",
        'version = 1\n[categories.x]\ndefault = "maybe"': "default = 'maybe'; use one of block, nsfw, allow",
        'version = 1\n[categories.x]\nregexes = ["(unclosed"]': "does not compile",
        'version = 1\n[categories.x]\nwords = ["..."]': "has no letters",
        'version = 1\n[categories.x]\nwith = ["nope"]': "'nope' is not a category",
        'version = 1\n[categories.x]\nwordz = ["a"]': "unknown key(s) wordz",
        "version = 1\n[categories": "not valid TOML",
    }
    for text, message in cases.items():
        path = tmp_path / "policy.toml"
        path.write_text(text, "utf-8")
        with pytest.raises(PolicyError, match=re.escape(message)):
            load_policy(path)
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path / "missing.toml")


def test_an_operator_policy_replaces_the_shipped_one(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text('version = 1\n[categories.spoilers]\nlabel = "spoilers"\nwords = ["rosebud"]\n', "utf-8")
    own = load_policy(path)
    assert not check_prompt(own, NO_SERVER, "Rosebud sled", nsfw_channel=True).allowed
    assert check_prompt(own, NO_SERVER, "a nude figure", nsfw_channel=False).allowed


def test_moderator_words_are_validated(policy: Policy) -> None:
    assert policy.check_server_word("custom", "  clown ") == "clown"
    with pytest.raises(PolicyError, match="no category 'nope'"):
        policy.check_server_word("nope", "clown")
    with pytest.raises(PolicyError, match="no letters"):
        policy.check_server_word("custom", "!!!")
    with pytest.raises(PolicyError, match="1 to 100 characters"):
        policy.check_server_word("custom", "x" * 101)
