"""The prompt policy: categories of words from a TOML file, and what each server chose to do with them.

The shipped ``default.toml`` (English and Chinese) is used unless the operator points ``IMPASTO_MODERATION`` at their
own file, which replaces it whole. A file looks like::

    version = 1

    [categories.gore]
    label = "gore"                       # the user reads "this prompt was refused: gore is …"
    default = "nsfw"                     # block | nsfw | allow: a server's choice until it picks its own
    words = ["decapitated", "severed head", "肢解"]
    regexes = []                         # Python regexes over the folded, lowercased prompt
    except = ["al gore", "gore-tex"]     # phrases whose words do not count

    [categories.minors]
    label = "sexual content involving minors"
    default = "block"
    locked = true                        # no server can change the choice or remove a word
    words = ["loli"]
    with_words = ["child", "儿童"]       # refused only together with a hit of a category in `with`
    with_regexes = ['\\b([1-9]|1[0-7]) ?(yo|years? old)\\b']
    with = ["sexual"]

Loading compiles everything once; a bad file is refused at start-up with the file, the key and what is allowed.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast, get_args

from impasto.queue.moderation.folding import fold_term
from impasto.queue.moderation.matching import Entry, Matcher, PolicyError

if TYPE_CHECKING:
    from impasto.storage.moderation import ServerModeration

Choice = Literal["block", "nsfw", "allow"]
CHOICES: tuple[Choice, ...] = get_args(Choice)
DEFAULT_POLICY = Path(__file__).with_name("default.toml")
MAX_SERVER_WORD_CHARS = 100


@dataclass(frozen=True)
class Category:
    name: str
    label: str
    default: Choice
    locked: bool = False
    with_categories: tuple[str, ...] = ()  # the minors rule: its `with` words count only next to these


@dataclass(frozen=True)
class ServerRules:
    """One server's moderation choices (SQL rows in ``storage/moderation.py`` turn into this).

    ``choices`` maps a category to block / nsfw / allow (a missing category keeps the policy's default, a locked one
    ignores it); ``added`` holds (category, word) pairs its moderators blocked; ``removed`` the words they unblocked.
    """

    choices: Mapping[str, Choice] = field(default_factory=dict)
    added: frozenset[tuple[str, str]] = frozenset()
    removed: frozenset[str] = frozenset()


NO_SERVER = ServerRules()  # DMs and the console: the policy's defaults


@dataclass
class Policy:
    categories: dict[str, Category]
    matcher: Matcher
    source: Path
    _server_matchers: dict[frozenset[tuple[str, str]], Matcher] = field(default_factory=dict, repr=False)

    def choice(self, server: ServerRules, category: str) -> Choice:
        spec = self.categories[category]
        if spec.locked:
            return spec.default
        return server.choices.get(category, spec.default)

    def server_matcher(self, added: frozenset[tuple[str, str]]) -> Matcher | None:
        """A server's own words, compiled once per distinct word set (a moderator's edit makes a new set)."""
        if not added:
            return None
        matcher = self._server_matchers.get(added)
        if matcher is None:
            if len(self._server_matchers) > 4096:  # many servers editing often: start over rather than grow
                self._server_matchers.clear()
            matcher = Matcher(Entry(category, word, "word", "server") for category, word in sorted(added))
            self._server_matchers[added] = matcher
        return matcher

    def rules_for(self, stored: ServerModeration) -> ServerRules:
        """A server's stored settings as rules; choices and words for categories this policy lacks are ignored
        (an operator may have replaced the policy file since)."""
        return ServerRules(
            choices={k: v for k, v in stored.choices.items() if k in self.categories and v in CHOICES},
            added=frozenset((c, w) for c, w in stored.added if c in self.categories),
            removed=stored.removed,
        )

    def check_server_word(self, category: str, word: str) -> str:
        """Validate a moderator's word before it is stored; returns it stripped. Raises ``PolicyError``."""
        word = word.strip()
        if category not in self.categories:
            raise PolicyError(f"no category {category!r}; the categories are {', '.join(self.categories)}")
        if not word or len(word) > MAX_SERVER_WORD_CHARS:
            raise PolicyError(f"a word is 1 to {MAX_SERVER_WORD_CHARS} characters, not {len(word)}")
        words, spaceless = fold_term(word)
        if not words and not spaceless:
            raise PolicyError(f"{word!r} has no letters to match")
        return word


def word_key(word: str) -> tuple[tuple[str, ...], str]:
    """The folded form two spellings of one word share ("Nude" and "ｎｕｄｅ"), for removals."""
    return fold_term(word)


def load_policy(path: Path | None = None) -> Policy:
    """Read and compile a policy file (``None``: the shipped default)."""
    source = path or DEFAULT_POLICY
    try:
        data = tomllib.loads(source.read_text("utf-8"))
    except OSError as exc:
        raise PolicyError(f"cannot read the moderation policy {source}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"moderation policy {source} is not valid TOML: {exc}") from exc
    return parse_policy(data, source)


def parse_policy(data: Mapping[str, Any], source: Path) -> Policy:
    if data.get("version") != 1:
        raise PolicyError(f"{source}: `version = 1` is required (found {data.get('version')!r})")
    raw = data.get("categories")
    if not isinstance(raw, dict) or not raw:
        raise PolicyError(f"{source}: at least one [categories.NAME] table is required")
    categories: dict[str, Category] = {}
    entries: list[Entry] = []
    for name, table in raw.items():
        where = f"{source}: [categories.{name}]"
        if not isinstance(table, dict):
            raise PolicyError(f"{where} must be a table")
        unknown = set(table) - {"label", "default", "locked", "words", "regexes", "except", "with_words",
                                "with_regexes", "with"}  # fmt: skip
        if unknown:
            raise PolicyError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
        default = table.get("default", "block")
        if default not in CHOICES:
            raise PolicyError(f"{where}: default = {default!r}; use one of {', '.join(CHOICES)}")
        categories[name] = Category(
            name=name,
            label=_string(table.get("label", name.replace("_", " ")), f"{where} label"),
            default=cast(Choice, default),
            locked=bool(table.get("locked", False)),
            with_categories=tuple(_strings(table.get("with", []), f"{where} with")),
        )
        entries += [Entry(name, w, "word") for w in _strings(table.get("words", []), f"{where} words")]
        entries += [Entry(name, r, "word", regex=True) for r in _strings(table.get("regexes", []), f"{where} regexes")]
        entries += [Entry(name, w, "except") for w in _strings(table.get("except", []), f"{where} except")]
        entries += [Entry(name, w, "with") for w in _strings(table.get("with_words", []), f"{where} with_words")]
        entries += [
            Entry(name, r, "with", regex=True) for r in _strings(table.get("with_regexes", []), f"{where} with_regexes")
        ]
    for category in categories.values():
        for other in category.with_categories:
            if other not in categories:
                raise PolicyError(f"{source}: [categories.{category.name}] with = {other!r} is not a category")
    try:
        matcher = Matcher(entries)
    except PolicyError as exc:
        raise PolicyError(f"{source}: {exc}") from exc
    return Policy(categories=categories, matcher=matcher, source=source)


def _string(value: object, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise PolicyError(f"{where} must be a non-empty string")
    return value


def _strings(value: object, where: str) -> Iterable[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise PolicyError(f"{where} must be a list of non-empty strings")
    return cast(list[str], value)
