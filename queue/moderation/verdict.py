"""The prompt check: one pure function from (policy, server's rules, texts, channel) to a verdict.

The admission pipeline calls it once per request, on every text the request would paint, before anything is
charged or stored; the worker calls it again on a prompt's English translation (``queue/screening.py``), with the
same server's rules. The verdict says whether to go on, the one line to tell the user, and what to audit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from impasto.queue.moderation.folding import fold
from impasto.queue.moderation.matching import Hit, without_exceptions
from impasto.queue.moderation.policy import Policy, ServerRules, word_key

# Why a prompt was refused: a listed word or phrase, a regex, a moderator's own word, or the minors combination.
Rule = Literal["word", "regex", "server word", "combination"]


@dataclass(frozen=True)
class Verdict:
    """``allowed`` or not; when refused, ``reason`` is the user's one line (the category, never the words).

    ``matched`` lists the policy terms found (for the audit log and the operator's ``impasto mod check``; users never
    see it). An allowed verdict may still carry matches: sexual words in an NSFW channel, say.
    """

    allowed: bool
    category: str | None = None
    rule: Rule | None = None
    reason: str | None = None
    matched: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        """``impasto mod check --json``'s shape."""
        return {
            "allowed": self.allowed,
            "category": self.category,
            "rule": self.rule,
            "matched": ", ".join(self.matched) or None,
        }


def find(policy: Policy, server: ServerRules, texts: Iterable[str]) -> list[Hit]:
    """Every policy and server entry found in the texts, after the policy's exceptions (not the server's removals)."""
    extra = policy.server_matcher(server.added)
    hits: list[Hit] = []
    for text in texts:
        if not text.strip():
            continue
        folded = fold(text)
        found = policy.matcher.find(folded)
        if extra is not None:
            found += extra.find(folded)
        hits += without_exceptions(found)
    return hits


def _unless_removed(policy: Policy, server: ServerRules, hits: list[Hit]) -> list[Hit]:
    """The hits the server's removals leave: a removal never touches a locked category or a regex."""
    if not server.removed:
        return hits
    removed = {word_key(w) for w in server.removed}
    return [
        h
        for h in hits
        if h.entry.source == "server"
        or policy.categories[h.entry.category].locked
        or h.entry.regex
        or word_key(h.entry.term) not in removed
    ]


def check_texts(policy: Policy, server: ServerRules, texts: Sequence[str], *, nsfw_channel: bool) -> Verdict:
    """The verdict for a request made of several texts (permutations, a suffix, image-link text …) taken together.

    Together matters for the minors rule: "a child" in one text and a sexual word in another is still refused.
    """
    every = find(policy, server, texts)
    hits = _unless_removed(policy, server, every)
    words = [h for h in hits if h.entry.kind == "word"]
    hit_categories = {h.entry.category for h in words}
    matched = tuple(dict.fromkeys(h.entry.term for h in hits))

    # 1. A category whose `with` words met one of its `with` categories: refused whatever the server chose or
    # removed (a server that unlists "nude" for its life-drawing channel has not allowed "nude child").
    for name, category in policy.categories.items():
        if not category.with_categories:
            continue
        companions = [h for h in every if h.entry.kind == "with" and h.entry.category == name]
        partners = [h for h in every if h.entry.kind == "word" and h.entry.category in category.with_categories]
        if companions and partners:
            terms = tuple(dict.fromkeys(h.entry.term for h in (*companions, *partners)))
            return _refused(policy, name, "combination", terms, in_channel=False)

    # 2. Then each hit category in the policy's order (locked and blocked first), as the server chose.
    refusals: list[tuple[int, str, bool]] = []
    for name in hit_categories:
        choice = policy.choice(server, name)
        if choice == "block":
            refusals.append((0, name, False))
        elif choice == "nsfw" and not nsfw_channel:
            refusals.append((1, name, True))
    if refusals:
        order = list(policy.categories)
        _, name, in_channel = min(refusals, key=lambda r: (r[0], order.index(r[1])))
        own = [h for h in words if h.entry.category == name]
        rule: Rule = (
            "server word"
            if all(h.entry.source == "server" for h in own)
            else "regex"
            if all(h.entry.regex for h in own)
            else "word"
        )
        return _refused(policy, name, rule, tuple(dict.fromkeys(h.entry.term for h in own)), in_channel=in_channel)
    return Verdict(allowed=True, matched=matched)


def check_prompt(policy: Policy, server: ServerRules, text: str, *, nsfw_channel: bool) -> Verdict:
    """One text: a /prefer suffix, an option value, a custom-zoom prompt, the console's ``impasto mod check``."""
    return check_texts(policy, server, [text], nsfw_channel=nsfw_channel)


def _refused(policy: Policy, name: str, rule: Rule, matched: tuple[str, ...], *, in_channel: bool) -> Verdict:
    category = policy.categories[name]
    if category.locked:
        where = "is never allowed"
    elif in_channel:
        where = "is only allowed in channels marked NSFW"
    else:
        where = "is not allowed on this server"
    return Verdict(
        allowed=False,
        category=name,
        rule=rule,
        reason=f"this prompt was refused: {category.label} {where}",
        matched=matched,
    )
