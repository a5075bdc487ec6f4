"""The catalogs: complete in Chinese, fields that fit, locale negotiation, and refusals rendered per language."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import pytest

from impasto.bots.i18n.catalog import DEFAULT_LOCALE, Catalogs, catalogs, field_names, t
from impasto.bots.i18n.locale import negotiate, served_locale
from impasto.bots.i18n.refusals import localize, match, translate_line
from impasto.bots.language.errors import PromptError
from impasto.bots.language.parser import parse_blend, parse_imagine
from impasto.bots.language.prefs import Preferences, validate_option, validate_suffix
from impasto.bots.moderation.review import AUDIT_KINDS
from impasto.engine.registry import DEFAULT_REGISTRY_PATH, Registry, load_registry
from impasto.queue.actions import ACTIONS, Action

ZH = "zh_Hans"


@pytest.fixture(scope="module")
def registry() -> Registry:
    return load_registry(DEFAULT_REGISTRY_PATH, "v6")


#: Messages whose Chinese is rightly the same as the English (a language's own name, U1–U4/V1–V4, a percentage).
NOT_WORDS = ("language.", "status.percent", "label.u", "label.v", "label.dp")


def _is_chinese(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def untranslated(cats: Catalogs, keys: Iterable[str]) -> list[str]:
    """The keys among ``keys`` that lack a Chinese translation (missing, or left in English)."""
    english, chinese = cats.messages[DEFAULT_LOCALE], cats.messages.get(ZH, {})
    return sorted(
        key
        for key in set(keys)
        if key not in english or key not in chinese or (not key.startswith(NOT_WORDS) and not _is_chinese(chinese[key]))
    )


def test_every_message_has_a_chinese_translation_with_the_same_fields() -> None:
    cats = catalogs()
    english, chinese = cats.messages[DEFAULT_LOCALE], cats.messages[ZH]
    assert len(english) >= 200
    missing = sorted(set(english) - set(chinese))
    assert missing == [], f"untranslated into {ZH}: {missing}"
    assert sorted(set(chinese) - set(english)) == []  # a key only one language has is a typo
    for key, template in english.items():
        assert field_names(chinese[key]) == field_names(template), key
    assert untranslated(cats, english) == []


# A key the code names: t("key", …) and any other literal "prefix.rest" with a prefix the catalogs use.
_CALLED = re.compile(r"""\bt\(\s*["']([^"'{}\s]+)["']""")
_LITERAL = re.compile(r"""(?<![\w.])["']([a-z_]+\.[A-Za-z0-9_./-]*[A-Za-z0-9_])["']""")  # a prefix ("x.") is no key
BOTS = Path(__file__).resolve().parents[2] / "bots"


def keys_in_code(prefixes: set[str]) -> dict[str, str]:
    """Every catalog key written out in ``bots/`` → where (keys built at run time are enumerated below)."""
    found: dict[str, str] = {}
    for path in sorted(BOTS.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        for key in _CALLED.findall(source):
            found.setdefault(key, str(path.relative_to(BOTS)))
        for key in _LITERAL.findall(source):
            if key.split(".", 1)[0] in prefixes and not key.endswith((".py", ".po", ".toml", ".com", ".org")):
                found.setdefault(key, str(path.relative_to(BOTS)))
    return found


def keys_built_at_run_time() -> set[str]:
    """The keys the adapters build from a value (an action, a mode, a status, a language)."""
    keys = {f"label.{action.value}" for action in Action}
    keys |= {f"caption.{action.value}" for action, row in ACTIONS.items() if row.caption}
    keys |= {f"mode.{m}" for m in ("fast", "relax", "turbo")} | {f"info.mode_{m}" for m in ("fast", "relax", "turbo")}
    keys |= {f"reply.mode_{m}" for m in ("fast", "relax", "turbo")} | {
        f"settings.{m}" for m in ("fast", "relax", "turbo")
    }
    keys |= {f"settings.stylize_{s}" for s in ("low", "med", "high", "very_high")}
    keys |= {f"term.{s}" for s in ("queued", "running", "failed", "cancelled", "done")}
    keys |= {f"language.{name}" for name in catalogs().locales}
    keys |= {f"modcmd.choice_{choice}" for choice in ("block", "nsfw", "allow")}
    kinds = ("refused", "flagged", "timeout", "ban", "unban", "word+", "word-", "policy", "channel", "held", "appeal")
    keys |= {f"audit.{AUDIT_KINDS.get(kind, kind)}" for kind in (*kinds, "approved", "rejected")}
    keys |= {f"web.{visibility}" for visibility in ("public", "stealth")}  # job.html: known("web." ~ visibility)
    return keys


# The web front door: every key its templates name (t("…"), tm("…"), and any other quoted "web.…" literal, such as
# the two sides of an `if`), and every key editor.js reads from the page's JSON blob (TEXT["…"]).
WEB = BOTS / "web"
_TEMPLATE_CALL = re.compile(r"""\b(?:t|tm)\(\s*["']([^"'{}\s]+)["']""")
_JS_KEY = re.compile(r"""\bTEXT\[\s*["']([^"']+)["']\s*\]""")


def keys_in_web_pages(prefixes: set[str]) -> dict[str, str]:
    """Every catalog key the templates and editor.js use → where."""
    found: dict[str, str] = {}
    for path in sorted((WEB / "templates").glob("*.html")):
        source = path.read_text(encoding="utf-8")
        for key in [*_TEMPLATE_CALL.findall(source), *_LITERAL.findall(source)]:
            if key.split(".", 1)[0] in prefixes:
                found.setdefault(key, f"web/templates/{path.name}")
    for key in _JS_KEY.findall((WEB / "static" / "editor.js").read_text(encoding="utf-8")):
        found.setdefault(key, "web/static/editor.js")
    return found


def test_every_key_the_code_uses_has_a_chinese_translation() -> None:
    cats = catalogs()
    prefixes = {key.split(".", 1)[0] for key in cats.messages[DEFAULT_LOCALE]}
    used = keys_in_code(prefixes)
    assert len(used) > 80  # the scan sees the adapters' texts
    web = keys_in_web_pages(prefixes)
    assert len(web) > 60  # the scan sees the pages' texts
    used = {**web, **used}
    missing = untranslated(cats, [*used, *keys_built_at_run_time()])
    assert missing == [], "keys without a Chinese translation: " + ", ".join(
        f"{k} ({used.get(k, 'built')})" for k in missing
    )


def test_the_scan_fails_on_a_key_without_chinese() -> None:
    english = dict(catalogs().messages[DEFAULT_LOCALE])
    chinese = dict(catalogs().messages[ZH])
    english["reply.new_thing"] = "A new thing"
    assert untranslated(Catalogs({"en": english, ZH: chinese}), ["reply.new_thing", "info.title"]) == [
        "reply.new_thing"
    ]
    chinese["reply.new_thing"] = "A new thing"  # copied, not translated
    assert untranslated(Catalogs({"en": english, ZH: chinese}), ["reply.new_thing"]) == ["reply.new_thing"]
    assert untranslated(catalogs(), ["no.such_key"]) == ["no.such_key"]
    assert keys_in_code({"reply"}).get("reply.favorite_added") == "discord/controls.py"


def test_t_fills_fields_and_falls_back_to_english() -> None:
    assert t("info.fast_left_value", ZH, left="1.20", limit="3.3", percent=36) == "1.20 / 3.3 小时（36%）"
    assert t("info.fast_left_value", "en", left="1.20", limit="3.3", percent=36) == "1.20 / 3.3 hours (36%)"
    assert t("info.none", "fr") == "none"  # a language without a catalog: English
    assert t("no.such.key", ZH) == "no.such.key"
    partial = Catalogs({"en": {"a": "hello {name}"}, ZH: {"a": "你好 {nom}"}})
    assert partial.t("a", ZH, name="Ada") == "hello Ada"  # a broken translation: English, never "{nom}"


@pytest.mark.parametrize(
    ("chosen", "platform", "server", "expected"),
    [
        (None, "zh-CN", None, ZH),  # Discord
        (None, "zh-TW", None, ZH),  # Traditional asked, Simplified is the Chinese we have
        (None, "zh-hans", None, ZH),  # Telegram
        (None, "zh", None, ZH),
        (None, "en-US", "zh-CN", "en"),  # the app's language beats the server's default
        (None, "fr", "zh-CN", ZH),  # a language impasto does not speak: the server's default
        (None, None, None, "en"),
        ("en", "zh-CN", ZH, "en"),  # the user's own choice first
        (ZH, "en-GB", None, ZH),
        ("klingon", "", None, "en"),
    ],
)
def test_negotiation_order(chosen: str | None, platform: str | None, server: str | None, expected: str) -> None:
    assert negotiate(chosen=chosen, platform=platform, server=server) == expected


def test_a_traditional_catalog_would_be_picked_once_it_exists() -> None:
    served = ["en", "zh_Hans", "zh_Hant", "pt_BR", "pt"]
    assert served_locale("zh-TW", served) == "zh_Hant"
    assert served_locale("zh-hant", served) == "zh_Hant"
    assert served_locale("zh-CN", served) == "zh_Hans"
    assert served_locale("pt-BR", served) == "pt_BR"
    assert served_locale("pt-PT", served) == "pt"


# Bad input of every kind the command language refuses, through the real parser.
BAD_PROMPTS = [
    "a cat --chaos 200",
    "a cat --chaos lots",
    "a cat --stylize 5000",
    "a cat --ar 16",
    "a cat --ar 0:9",
    "a cat --ar 9:1",
    "a cat --q 3",
    "a cat --q x",
    "a cat --v abc",
    "a cat --v 99",
    "a cat --niji 99",
    "a cat --seed",
    "a cat --tile yes please",
    "a cat --ar 16:9 and a dog",
    "a cat --ar 16:9,",
    "a cat --style vivid",
    "a cat --no",
    "a cat --zoom 2",
    "a cat --sref random",
    "a cat --sref",
    "a cat --sref https://e.com/1.png https://e.com/2.png https://e.com/3.png https://e.com/4.png https://e.com/5.png "
    "https://e.com/6.png",
    "a cat --sw 300",
    "a cat --fancy 2",
    "a cat --chaso 20",
    "a cat --chaos 10 --chaos 20",
    "a cat --fast --relax",
    "a cat --iw 2",
    "a cat--ar 2:3",
    "a cat - - ar 2:3",
    "::2 dog",
    "a cat::-2",
    "https://example.com/a.png",
    "https://example.com/a.png --chaos 10 --no text",
    "--ar 2:3",
    "",
    "a {red, blue",
    "a red} cat",
    "a {1,2,3,4,5,6} cat",
    "a cat --repeat 9",
    "a <lora:bad/name:1> cat",
    "a <lora:style:99> cat",
    "a (cat:99)",
    "x" * 7000,
    "a cat --" + "x" * 200,
]


def _refusals(registry: Registry) -> list[str]:
    messages = []
    for prompt in BAD_PROMPTS:
        try:
            parse_imagine(prompt, registry=registry)
        except PromptError as exc:
            messages.append(exc.message)
        else:  # pragma: no cover - the corpus must only hold refused prompts
            pytest.fail(f"{prompt[:40]!r} was accepted")
    for call in (
        lambda: parse_blend(["https://example.com/a.png"], None, registry=registry),
        lambda: parse_blend(["ftp://x", "https://example.com/b.png"], None, registry=registry),
        lambda: parse_blend(["https://e.com/a.png", "https://e.com/b.png"], "wide", registry=registry),
        lambda: validate_suffix("a cat"),
        lambda: validate_suffix("--ar {1:1, 2:3}"),
        lambda: validate_suffix("--ar 2:3 ::2"),
        lambda: validate_option("Bad Name", "--ar 2:3"),
        lambda: validate_option("ar", "--ar 2:3"),
        lambda: parse_imagine("a cat", registry=registry, preferences=Preferences(settings="--chaos 500")),
    ):
        try:
            call()
        except PromptError as exc:
            messages.append(exc.message)
        else:  # pragma: no cover
            pytest.fail("a refused call was accepted")
    return messages


def test_every_refusal_of_the_command_language_reads_in_chinese(registry: Registry) -> None:
    messages = _refusals(registry)
    assert len(messages) == len(BAD_PROMPTS) + 9
    unmatched = [m for m in messages if match(m) is None]
    assert unmatched == [], "refusals without a catalog template:\n" + "\n".join(unmatched)
    for message in messages:
        chinese = localize(message, ZH)
        assert chinese != message
        assert any("\u4e00" <= ch <= "\u9fff" for ch in chinese), chinese
        assert localize(message, "en") == message


def test_a_refusal_keeps_its_values_and_translates_its_terms() -> None:
    message = "--chaos 200 is out of range; allowed 0–100"
    assert localize(message, ZH) == "--chaos 200 超出范围；允许 0–100"
    nested = "in your /settings: --chaos 500 is out of range; allowed 0–100"
    assert localize(nested, ZH) == "你的 /settings 设置 有误：--chaos 500 超出范围；允许 0–100"
    assert localize("job Ab3dE5fG7hJ9 is running; its buttons work once it is done", ZH) == (
        "任务 Ab3dE5fG7hJ9 正在生成；完成后按钮才能使用"
    )
    assert localize("something no template knows", ZH) == "something no template knows"


def test_the_catalog_holds_the_texts_the_adapters_send_today() -> None:
    # Until the adapters read the catalogs, the English catalog must say exactly what they say.
    from impasto.bots.discord.texts import HELP as DISCORD_HELP
    from impasto.bots.telegram.texts import COMMANDS, HELP, START

    assert t("help.telegram", "en") == HELP
    assert t("help.discord", "en") == DISCORD_HELP
    assert t("help.start", "en") == START
    for name, english, chinese in COMMANDS:
        assert (t(f"command.{name}", "en"), t(f"command.{name}", ZH)) == (english, chinese)
    assert "<code>/imagine a red fox in snow --ar 3:2 --no people</code>" in t("help.telegram", ZH)


# Refusals the chat adapters raise or pass on in English, as users meet them.
ADAPTER_REFUSALS = [
    "job Ab3dE5fG7hJ9 is running; /show works on finished jobs",
    "/mod works in a server, not in DMs",
    "/server works in a server, not in DMs",
    "the review queue is not running in this bot",
    "Vary (Region) needs the web editor, which this bot has not been set up with",
    "job Ab3dE5fG7hJ9 has no image to show yet",
    "attachment 'a.txt' is text/plain; only PNG, JPEG, WebP or GIF images work",
    "attachment 'b.png' is 12.5 MB; the limit is 10.0 MB",
    "That file is 12.0 MB; the limit is 10 MB.",
    "That file is not an image; send a PNG, JPEG or WebP photo.",
    "/blend takes no text prompt, only --dimensions portrait|square|landscape; remove 'a cat'",
    "write /prefer option set NAME VALUE, e.g. /prefer option set mine --s 250",
    "the queue is restarting; nothing was charged, try again in a minute",
    "impasto is temporarily unavailable (its database is restarting); nothing was charged, try again soon",
    "this prompt was refused: sexual content is only allowed in channels marked NSFW (warning 1 of 5)",
    "this prompt was refused: gore is not allowed on this server",
    "this prompt was refused: self-harm is not allowed on this server; "
    "you are timed out here until 2026-12-02 10:00 UTC",
    "this prompt was refused: sexual content involving minors is never allowed; "
    "you are now banned from painting on this server",
    "you are timed out on this server until 2026-12-02 10:00 UTC (after refused prompts)",
    "you are banned from painting anywhere; ask a moderator",
    "Job queued: you have reached the maximum allowed number of concurrent jobs; "
    "this job will start as soon as another one finishes",
]


@pytest.mark.parametrize("message", ADAPTER_REFUSALS)
def test_the_adapters_refusals_read_in_chinese(message: str) -> None:
    chinese = localize(message, ZH)
    assert _is_chinese(chinese), chinese
    assert localize(message, "en") == message


def test_the_core_constants_match_their_catalog_english() -> None:
    # The texts the core writes in English must stay word for word what the catalog's English says, or they would
    # reach Chinese users in English.
    from impasto.bots.service.admission import HELD_NOTICE
    from impasto.bots.service.delivery.core import HELD_LINE, REMOVED_LINE
    from impasto.bots.service.outages import DATABASE_DOWN, QUEUE_DOWN

    assert t("service.held_notice", "en") == HELD_NOTICE
    assert (t("service.database_down", "en"), t("service.queue_down", "en")) == (DATABASE_DOWN, QUEUE_DOWN)
    assert (t("service.held_line", "en"), t("service.removed_line", "en")) == (HELD_LINE, REMOVED_LINE)
    assert translate_line(HELD_LINE, ZH) == t("service.held_line", ZH)


def test_every_category_of_the_shipped_policy_is_named_in_chinese() -> None:
    from impasto.queue.moderation.policy import load_policy

    policy = load_policy()
    for category in policy.categories.values():
        message = f"this prompt was refused: {category.label} is not allowed on this server"
        assert localize(message, ZH).startswith("这个提示词被拒绝："), message
        assert category.label not in localize(message, ZH), f"no term.{category.label} in {ZH}.po"


def test_the_web_pages_keys_are_scanned_and_the_editor_js_blob_carries_them() -> None:
    from impasto.bots.web.app import EDITOR_JS_KEYS

    web = keys_in_web_pages({"web", "mode", "label", "term", "review"})
    assert web["web.brush"] == "web/templates/editor.html"
    assert web["web.submitted"] == "web/templates/submitted.html"  # the other side of an `if`
    assert web["review.policy"] == "web/templates/desk.html"
    in_js = {key for key, where in web.items() if where == "web/static/editor.js"}
    assert in_js, "editor.js reads no TEXT[…] key: the scan misses its words"
    # What editor.js shows must be in the blob the page passes it, and every blob key is a catalog key.
    assert in_js <= set(EDITOR_JS_KEYS)
    assert untranslated(catalogs(), EDITOR_JS_KEYS) == []


def test_review_decisions_read_in_chinese_and_match_what_the_core_writes() -> None:
    """``bots/moderation/review.py`` writes its decisions in English; each has a ``decision.*`` template (the same
    words, so a change there shows here) and reads back in Chinese with its fields kept."""
    source = (BOTS / "moderation" / "review.py").read_text(encoding="utf-8")
    english = catalogs().messages[DEFAULT_LOCALE]
    decisions = {key: text for key, text in english.items() if key.startswith("decision.")}
    assert len(decisions) >= 10
    for key, text in decisions.items():
        spellings = {text, text.replace("{job}", "{item.job_id}"), text.replace("{job}", "{job_id}")}
        if key.startswith("decision.already_"):
            spellings = {"another moderator already {verb} this"}
        assert any(s in source for s in spellings), f"{key}: review.py no longer writes {text!r}"
        line = text.format(job="j8Kq2", why="no credits left")
        chinese = translate_line(line, ZH)
        assert _is_chinese(chinese), f"{line!r} stayed English"
        assert "j8Kq2" in chinese or "{job}" not in text
