"""The ``--parameters`` after a prompt: which exist, their long and short names, ranges, and the ones impasto refuses.

The parameter area is tokenised on whitespace: a token starting with ``--`` names an option, the tokens after it are
its values. Each option checks its own values, so every error names the option as written, the value, and what is
allowed. Registry-dependent checks (``--v``/``--niji`` names) happen later, in the parser.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from math import gcd

from impasto.bots.language.errors import PromptError, clip

# Hard bounds so a hostile value never reaches int()/float() with thousands of digits (Python refuses > 4300 digits
# with a plain ValueError, which would escape as a non-PromptError).
_INT = re.compile(r"\d{1,12}")
_DECIMAL = re.compile(r"\d{1,6}(?:\.\d{0,6})?|\.\d{1,6}")
_RATIO = re.compile(r"(\d{1,6}):(\d{1,6})")
_PUNCTUATION = ",.;!?)]}'\""

MIN_RATIO = 1 / 4  # 1:4 … 4:1, the allowed aspect range
MAX_RATIO = 4.0
MAX_SEED = 4_294_967_295
QUALITIES = (0.25, 0.5, 1.0, 2.0)
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".gif")
MAX_STYLE_REFERENCES = 5
#: Image links (--sref) may be longer than other values: chat CDNs sign them with long query strings.
MAX_LINK = 2000

# What a Midjourney user may type that impasto does not serve, each with the reason given back to them.
REFUSED: dict[str, str] = {
    "sv": "style reference versions (--sv)",
    "cref": "character references (--cref)",
    "cw": "character weight (--cw, it goes with --cref)",
    "oref": "omni references (--oref)",
    "ow": "omni weight (--ow, it goes with --oref)",
    "p": "personalization profiles (--p)",
    "profile": "personalization profiles (--profile)",
    "personalize": "personalization profiles (--personalize)",
    "video": "video generation (--video)",
    "motion": "video motion (--motion)",
    "loop": "video loops (--loop)",
    "end": "video end frames (--end)",
    "bs": "video batch size (--bs)",
    "hd": "HD renders (--hd)",
    "sd": "the SD/HD switch (--sd)",
    "exp": "experimental aesthetics (--exp)",
    "edit": "the Edit model (--edit)",
    "test": "Midjourney's legacy test models (--test)",
    "testp": "Midjourney's legacy test models (--testp)",
    "creative": "Midjourney's legacy test models (--creative)",
    "uplight": "legacy upscaler choices (--uplight; use the Upscale buttons)",
    "upbeta": "legacy upscaler choices (--upbeta; use the Upscale buttons)",
    "upanime": "legacy upscaler choices (--upanime; use the Upscale buttons)",
    "sameseed": "the legacy --sameseed (use --seed)",
    "h": "legacy pixel sizes (--h; use --ar)",
    "width": "pixel sizes (--width; use --ar)",
    "height": "pixel sizes (--height; use --ar)",
    "wallpaper": "legacy wallpaper sizes (--wallpaper; use --ar)",
}


@dataclass(frozen=True)
class ParamSet:
    """Parameters given explicitly by one source (the prompt, the /prefer suffix, the /settings defaults).

    None means "not given here", so sources merge field by field (``over``). ``shown`` keeps the canonical text of
    each given parameter, in the order given, for ``Job.display``.
    """

    aspect: tuple[int, int] | None = None
    chaos: int | None = None
    quality: float | None = None
    repeat: int | None = None
    seed: int | None = None
    stop: int | None = None
    style: str | None = None
    stylize: int | None = None
    tile: bool | None = None
    image_weight: float | None = None
    style_references: tuple[str, ...] | None = None
    style_weight: int | None = None
    weird: int | None = None
    model: tuple[str, str | None] | None = None  # ("v", "6") or ("niji", None | "6")
    mode: str | None = None
    visibility: str | None = None
    draft: bool | None = None
    no: tuple[str, ...] = ()
    zoom: float | None = None
    shown: tuple[tuple[str, str], ...] = field(default=(), compare=False)  # (key, "--ar 16:9")
    # The option as written ("--ar", "--aspect") for each given key: errors found later name what the user typed.
    written: tuple[tuple[str, str], ...] = field(default=(), compare=False)

    def over(self, lower: ParamSet) -> ParamSet:
        """This set wins, ``lower`` fills the gaps; ``--no`` lists are combined (both say what to avoid)."""
        values: dict[str, object] = {}
        for f in fields(self):
            if f.name in ("shown", "written", "no"):
                continue
            mine = getattr(self, f.name)
            values[f.name] = mine if mine is not None else getattr(lower, f.name)
        no = self.no + tuple(item for item in lower.no if item not in self.no)
        mine_keys = {key for key, _ in self.shown}
        shown = self.shown + tuple((k, s) for k, s in lower.shown if k not in mine_keys or k == "no")
        written = self.written + tuple((k, w) for k, w in lower.written if k not in mine_keys)
        merged = replace(self, no=no, shown=_merge_no_shown(shown, no), written=written)
        return replace(merged, **values)  # type: ignore[arg-type]

    def option_for(self, key: str) -> str:
        for k, written in self.written:
            if k == key:
                return written
        return f"--{key}"

    def display(self) -> str:
        return " ".join(text for _, text in self.shown)


def _merge_no_shown(shown: tuple[tuple[str, str], ...], no: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    out: list[tuple[str, str]] = []
    for key, text in shown:
        if key == "no":
            if no and not any(k == "no" for k, _ in out):
                out.append(("no", "--no " + ", ".join(no)))
            continue
        out.append((key, text))
    return tuple(out)


@dataclass
class _Builder:
    values: dict[str, object] = field(default_factory=dict)
    shown: list[tuple[str, str]] = field(default_factory=list)
    written: dict[str, str] = field(default_factory=dict)

    def set(self, key: str, option: str, value: object, shown: str) -> None:
        if key in self.values:
            first = self.written[key]
            what = "the model" if key == "model" else "the mode" if key == "mode" else "visibility"
            if key in ("model", "mode", "visibility") and first != option:
                raise PromptError(
                    f"{first} and {option} both set {what}; choose one", option=option, value=_shown_value(shown)
                )
            raise PromptError(
                f"{option} is given twice (already {first}); give each parameter once",
                option=option,
                value=_shown_value(shown),
            )
        self.values[key] = value
        self.shown.append((key, shown))
        self.written[key] = option

    def build(self) -> ParamSet:
        return replace(ParamSet(shown=tuple(self.shown), written=tuple(self.written.items())), **self.values)  # type: ignore[arg-type]


def _shown_value(shown: str) -> str | None:
    _, _, value = shown.partition(" ")
    return value or None


# ---------------------------------------------------------------------------------------------------------------
# Value checkers: (option as written, value) -> parsed value, raising PromptError with the allowed range.


def _whole(option: str, value: str, low: int, high: int) -> int:
    if not _INT.fullmatch(value):
        raise PromptError(f"{option} {value} is not a whole number; allowed {low}–{high}", option=option, value=value)
    number = int(value)
    if not low <= number <= high:
        raise PromptError(f"{option} {value} is out of range; allowed {low}–{high}", option=option, value=value)
    return number


def _decimal(option: str, value: str, low: float, high: float) -> float:
    if not _DECIMAL.fullmatch(value):
        raise PromptError(f"{option} {value} is not a number; allowed {low:g}–{high:g}", option=option, value=value)
    number = float(value)
    if not low <= number <= high:
        raise PromptError(f"{option} {value} is out of range; allowed {low:g}–{high:g}", option=option, value=value)
    return number


def parse_ratio(option: str, value: str) -> tuple[int, int]:
    """``W:H`` in whole numbers, reduced (1920:1080 → 16:9), within 1:4 … 4:1."""
    match = _RATIO.fullmatch(value)
    if match is None:
        raise PromptError(
            f"{option} {value} is not an aspect ratio; write whole numbers W:H such as 16:9 (from 1:4 to 4:1)",
            option=option,
            value=value,
        )
    width, height = int(match[1]), int(match[2])
    if width == 0 or height == 0:
        raise PromptError(f"{option} {value} has a zero side; allowed 1:4 to 4:1", option=option, value=value)
    divisor = gcd(width, height)
    width, height = width // divisor, height // divisor
    if not MIN_RATIO <= width / height <= MAX_RATIO:
        raise PromptError(f"{option} {value} is out of range; allowed 1:4 to 4:1", option=option, value=value)
    return width, height


def _quality(option: str, value: str) -> float:
    allowed = "allowed .25, .5, 1, 2"
    if not _DECIMAL.fullmatch(value):
        raise PromptError(f"{option} {value} is not a number; {allowed}", option=option, value=value)
    number = float(value)
    if number not in QUALITIES:
        raise PromptError(f"{option} {value} is not a quality impasto serves; {allowed}", option=option, value=value)
    return number


_VERSION = re.compile(r"\d{1,3}(?:\.\d{1,3})?")


def _version(option: str, value: str) -> str:
    if not _VERSION.fullmatch(value):
        raise PromptError(f"{option} {value} is not a version number such as 6 or 5.2", option=option, value=value)
    return value


def _format_number(number: float) -> str:
    return f"{number:g}"


# ---------------------------------------------------------------------------------------------------------------
# The option table.

Handler = Callable[[_Builder, str, list[str], int], None]


def _one_value(option: str, values: list[str], example: str) -> str:
    if not values:
        raise PromptError(f"{option} needs a value, e.g. {option} {example}", option=option, value=None)
    if len(values) > 1:
        extra = " ".join(values[1:])
        raise PromptError(
            f"unexpected text {clip(extra)!r} after {option} {values[0]}: text goes before the parameters",
            option=option,
            value=clip(extra, 200),
        )
    return values[0]


def _no_value(option: str, values: list[str]) -> None:
    if values:
        extra = " ".join(values)
        raise PromptError(
            f"unexpected text {clip(extra)!r} after {option}: {option} takes no value; text goes before the parameters",
            option=option,
            value=clip(extra, 200),
        )


def _with_punctuation_hint(option: str, value: str, check: Callable[[str], object]) -> object:
    """Run ``check``; when the value only fails because of glued punctuation (``--ar 2:3,``), say exactly that."""
    try:
        return check(value)
    except PromptError:
        stripped = value.rstrip(_PUNCTUATION)
        if stripped and stripped != value:
            try:
                check(stripped)
            except PromptError:
                pass
            else:
                raise PromptError(
                    f"{option} {value} has punctuation glued to it; parameters take no punctuation: "
                    f"write {option} {stripped}",
                    option=option,
                    value=value,
                ) from None
        raise


def _numeric(key: str, example: str, check: Callable[[str, str], object], show: str) -> Handler:
    def handle(builder: _Builder, option: str, values: list[str], cap: int) -> None:
        value = _one_value(option, values, example)
        parsed = _with_punctuation_hint(option, value, lambda v: check(option, v))
        text = _format_number(parsed) if isinstance(parsed, float) else str(parsed)
        builder.set(key, option, parsed, f"{show} {text}")

    return handle


def _aspect(builder: _Builder, option: str, values: list[str], cap: int) -> None:
    value = _one_value(option, values, "16:9")
    ratio = _with_punctuation_hint(option, value, lambda v: parse_ratio(option, v))
    assert isinstance(ratio, tuple)
    width, height = ratio
    builder.set("aspect", option, (width, height), f"--ar {width}:{height}")


def _repeat(builder: _Builder, option: str, values: list[str], cap: int) -> None:
    value = _one_value(option, values, "2")
    number = _with_punctuation_hint(option, value, lambda v: _whole(option, v, 1, cap))
    builder.set("repeat", option, number, f"--repeat {number}")


def _style(builder: _Builder, option: str, values: list[str], cap: int) -> None:
    if option == "--raw":
        _no_value(option, values)
        builder.set("style", option, "raw", "--style raw")
        return
    value = _one_value(option, values, "raw")

    def check(v: str) -> None:
        if v.lower() != "raw":
            raise PromptError(f"{option} {v} is not served; impasto serves only {option} raw", option=option, value=v)

    _with_punctuation_hint(option, value, check)
    builder.set("style", option, "raw", "--style raw")


def _flag(key: str, value: object, show: str) -> Handler:
    def handle(builder: _Builder, option: str, values: list[str], cap: int) -> None:
        _no_value(option, values)
        builder.set(key, option, value, show)

    return handle


def _version_option(builder: _Builder, option: str, values: list[str], cap: int) -> None:
    value = _one_value(option, values, "6")
    version = _with_punctuation_hint(option, value, lambda v: _version(option, v))
    builder.set("model", option, ("v", version), f"--v {version}")


def _niji(builder: _Builder, option: str, values: list[str], cap: int) -> None:
    if len(values) > 1:
        _one_value(option, values, "6")
    if not values:
        builder.set("model", option, ("niji", None), "--niji")
        return
    version = _with_punctuation_hint(option, values[0], lambda v: _version(option, v))
    builder.set("model", option, ("niji", version), f"--niji {version}")


def _no(builder: _Builder, option: str, values: list[str], cap: int) -> None:
    items = tuple(item.strip() for item in " ".join(values).split(","))
    items = tuple(item for item in items if item)
    if not items:
        raise PromptError(f"{option} needs what to avoid, e.g. {option} text, watermark", option=option, value=None)
    builder.set("no", option, items, "--no " + ", ".join(items))


def _zoom(builder: _Builder, option: str, values: list[str], cap: int) -> None:
    value = _one_value(option, values, "1.5")

    def check(v: str) -> float:
        if not _DECIMAL.fullmatch(v) or not 1 < float(v) <= 2:
            raise PromptError(
                f"{option} {v} is out of range; allowed more than 1 and at most 2", option=option, value=v
            )
        return float(v)

    number = _with_punctuation_hint(option, value, check)
    builder.set("zoom", option, number, f"--zoom {_format_number(float(number))}")  # type: ignore[arg-type]


def is_image_url(token: str) -> bool:
    """A direct http(s) link whose path ends .png .jpg .jpeg .webp .gif (a query string or fragment may follow)."""
    lower = token.lower()
    if not lower.startswith(("http://", "https://")):
        return False
    path = re.split(r"[?#]", lower, maxsplit=1)[0]
    host_and_path = path.split("://", 1)[1]
    return "/" in host_and_path and host_and_path.split("/", 1)[0] != "" and path.endswith(IMAGE_EXTENSIONS)


def _sref(builder: _Builder, option: str, values: list[str], cap: int) -> None:
    """``--sref URL [URL …]``: style reference images (direct links, like image prompts). Midjourney's style codes
    (``--sref 123``, ``random``) name styles of its own models; they mean nothing here."""
    if not values:
        raise PromptError(
            f"{option} needs an image link, e.g. {option} https://example.com/style.png", option=option, value=None
        )
    if len(values) > MAX_STYLE_REFERENCES:
        raise PromptError(
            f"{option} takes at most {MAX_STYLE_REFERENCES} image links, not {len(values)}",
            option=option,
            value=str(len(values)),
        )
    for value in values:
        if not is_image_url(value):
            raise PromptError(
                f"{option} {clip(value)} is not an image link; style references are direct links ending .png, .jpg, "
                ".jpeg, .webp or .gif (Midjourney's style codes are not served)",
                option=option,
                value=clip(value, 200),
            )
    builder.set("style_references", option, tuple(values), f"--sref {' '.join(values)}")


OPTIONS: dict[str, Handler] = {
    "aspect": _aspect,
    "ar": _aspect,
    "chaos": _numeric("chaos", "50", lambda o, v: _whole(o, v, 0, 100), "--chaos"),
    "c": _numeric("chaos", "50", lambda o, v: _whole(o, v, 0, 100), "--chaos"),
    "quality": _numeric("quality", ".5", _quality, "--q"),
    "q": _numeric("quality", ".5", _quality, "--q"),
    "repeat": _repeat,
    "r": _repeat,
    "seed": _numeric("seed", "1234", lambda o, v: _whole(o, v, 0, MAX_SEED), "--seed"),
    "stop": _numeric("stop", "80", lambda o, v: _whole(o, v, 10, 100), "--stop"),
    "style": _style,
    "raw": _style,
    "stylize": _numeric("stylize", "250", lambda o, v: _whole(o, v, 0, 1000), "--stylize"),
    "s": _numeric("stylize", "250", lambda o, v: _whole(o, v, 0, 1000), "--stylize"),
    "tile": _flag("tile", True, "--tile"),
    "iw": _numeric("image_weight", "1.5", lambda o, v: _decimal(o, v, 0, 3), "--iw"),
    "sref": _sref,
    "sw": _numeric("style_weight", "200", lambda o, v: _whole(o, v, 0, 1000), "--sw"),
    "weird": _numeric("weird", "250", lambda o, v: _whole(o, v, 0, 3000), "--weird"),
    "w": _numeric("weird", "250", lambda o, v: _whole(o, v, 0, 3000), "--weird"),
    "version": _version_option,
    "v": _version_option,
    "niji": _niji,
    "fast": _flag("mode", "fast", "--fast"),
    "relax": _flag("mode", "relax", "--relax"),
    "turbo": _flag("mode", "turbo", "--turbo"),
    "public": _flag("visibility", "public", "--public"),
    "stealth": _flag("visibility", "stealth", "--stealth"),
    "draft": _flag("draft", True, "--draft"),
    "no": _no,
    "zoom": _zoom,
}

OPTION_NAME = re.compile(r"[a-z][a-z0-9_-]*")
MAX_TOKEN = 100  # no real parameter value is longer; longer ones are refused before any message quotes them


def known_names() -> list[str]:
    return sorted(set(OPTIONS) | set(REFUSED))


def tokenize(area: str) -> list[tuple[str, list[str]]]:
    """Split the parameter area into (option as written, values). The area must start with ``--``."""
    groups: list[tuple[str, list[str]]] = []
    for token in area.split():
        if token.startswith("--") and len(token) > 2:
            groups.append((token.lower(), []))
        elif not groups:
            raise PromptError(
                f"expected a parameter starting with -- but found {clip(token)!r}", option=None, value=clip(token, 200)
            )
        else:
            groups[-1][1].append(token)
    return groups


def parse_parameters(
    area: str,
    *,
    repeat_cap: int,
    allow_zoom: bool = False,
    allow_repeat: bool = True,
    custom: Sequence[str] = (),
) -> ParamSet:
    """Parse a parameter area (already expanded: no ``{}``, no custom options) into a ParamSet."""
    builder = _Builder()
    for option, values in tokenize(area):
        name = option[2:]
        if len(option) > MAX_TOKEN or not OPTION_NAME.fullmatch(name):
            raise PromptError(
                f"{clip(option, 40)!r} is not a parameter name; parameters look like --ar 16:9",
                option=clip(option, MAX_TOKEN),
                value=None,
            )
        limit = MAX_LINK if name == "sref" else MAX_TOKEN
        for value in values:
            if len(value) > limit:
                raise PromptError(
                    f"{option} has a value of {len(value)} characters; parameter values are at most {limit}",
                    option=option,
                    value=clip(value, MAX_TOKEN),
                )
        handler = OPTIONS.get(name)
        if name in REFUSED:
            raise PromptError(
                f"impasto does not serve {REFUSED[name]}; remove {option} from the prompt",
                option=option,
                value=clip(" ".join(values), 200) or None,
            )
        if handler is None:
            suggestion = difflib.get_close_matches(name, [*OPTIONS, *custom], n=1, cutoff=0.6)
            hint = f"; did you mean --{suggestion[0]}?" if suggestion else "; see `impasto explain --help` for the list"
            joined = clip(" ".join(values), 200) or None
            raise PromptError(f"unknown parameter {option}{hint}", option=option, value=joined)
        if name == "zoom" and not allow_zoom:
            raise PromptError(
                f"{option} only works in a Custom Zoom or Remix edit, not in a new prompt",
                option=option,
                value=clip(" ".join(values), 200) or None,
            )
        if name in ("repeat", "r") and not allow_repeat:
            raise PromptError(
                f"{option} does not work in a Remix edit; it makes one job", option=option, value=" ".join(values)
            )
        handler(builder, option, values, repeat_cap)
    return builder.build()
