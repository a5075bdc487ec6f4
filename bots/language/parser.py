"""The command language: the text of ``/imagine``, ``/blend`` and Remix edits → validated, fully-defaulted Jobs.

The steps for ``/imagine`` (Midjourney's order is ``[image URLs] text [--parameters]``):

1. refuse more than 6000 characters; read a word-initial em-dash ``—ar`` as ``--ar``;
2. expand permutations ``{a, b}`` over the whole text (parameters included), refusing more than the cap;
3. per permutation: leading image links, then the text up to the first `` --option``, then the parameters;
   custom ``/prefer option`` names expand in the parameters;
4. split the text into ``::`` segments and add each ``--no`` item as its own segment at -0.5;
5. merge the parameters over the /prefer suffix over /settings over the built-in defaults, resolve the model from
   the registry and size the image from the aspect ratio and the model's native size;
6. repeat each permutation ``--repeat`` times; the total is capped too.

Pure Python, no I/O: the registry is passed in.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from impasto.bots.language.emphasis import parse_emphasis, parse_loras
from impasto.bots.language.errors import PromptError
from impasto.bots.language.job import Job, Mode, Style, Visibility, WeightedPrompt
from impasto.bots.language.parameters import (
    IMAGE_EXTENSIONS,
    OPTIONS,
    REFUSED,
    ParamSet,
    is_image_url,
    parse_parameters,
    parse_ratio,
)
from impasto.bots.language.permutations import count_text, expand
from impasto.bots.language.prefs import Preferences, normalize_dashes
from impasto.bots.language.sizing import dimensions
from impasto.engine.registry import ModelEntry, Registry, RegistryError

MAX_PROMPT_CHARS = 6000
MAX_WEIGHT = 1000.0
MIN_BLEND, MAX_BLEND = 2, 5
MAX_IMAGE_PROMPTS = 10
__all__ = ["IMAGE_EXTENSIONS", "is_image_url", "parse_blend", "parse_imagine", "parse_remix"]
BLEND_DIMENSIONS = {"portrait": (2, 3), "square": (1, 1), "landscape": (3, 2)}

_TOKEN = re.compile(r"\s*(\S+)")
_PARAMS_START = re.compile(r"(?<!\S)--(?=[A-Za-z])")
_GLUED = re.compile(r"(\S)--([A-Za-z]+)(?=\s|$)")
_SPLIT_DASHES = re.compile(r"(?<!\S)-\s+-\s*([A-Za-z]+)(?=\s|$)")
_WEIGHT = re.compile(r"::([-+]?[\d.]*)")
_WEIGHT_NUMBER = re.compile(r"[-+]?(?:\d{1,6}(?:\.\d{0,6})?|\.\d{1,6})")


@dataclass(frozen=True)
class _Parsed:
    """One permutation, split into its parts; parameters not yet merged with preferences."""

    images: tuple[str, ...]
    text: str
    segments: tuple[WeightedPrompt, ...]
    params: ParamSet


# ---------------------------------------------------------------------------------------------------------------
# Pieces


def _leading_images(text: str) -> tuple[tuple[str, ...], str]:
    images: list[str] = []
    position = 0
    while (match := _TOKEN.match(text, position)) is not None:
        token = match[1]
        if not token.lower().startswith(("http://", "https://")):
            break
        if not is_image_url(token):
            raise PromptError(
                f"invalid image link {token[:100]!r}: an image prompt must be a direct link ending "
                ".png, .jpg, .jpeg, .webp or .gif",
                option=None,
                value=token[:200],
            )
        images.append(token)
        if len(images) > MAX_IMAGE_PROMPTS:
            raise PromptError(
                f"more than {MAX_IMAGE_PROMPTS} image prompts; use at most {MAX_IMAGE_PROMPTS}", option=None, value=None
            )
        position = match.end()
    return tuple(images), text[position:]


def _check_dashes(text: str) -> None:
    """Catch Midjourney's documented mistakes: ``poppies--ar 2:3`` and ``- - ar 2:3``."""
    names = set(OPTIONS) | set(REFUSED)
    for match in _GLUED.finditer(text):
        if match[2].lower() in names:
            option = f"--{match[2].lower()}"
            raise PromptError(
                f"{option} is glued to the text before it; put a space before {option}", option=option, value=None
            )
    for match in _SPLIT_DASHES.finditer(text):
        if match[1].lower() in names:
            option = f"--{match[1].lower()}"
            raise PromptError(
                f"the dashes of {option} are split; write {option} with no space between the dashes",
                option=option,
                value=None,
            )


def _expand_custom(area: str, preferences: Preferences) -> str:
    if not preferences.options:
        return area
    words = []
    for word in area.split():
        name = word[2:].lower() if word.startswith("--") else None
        if name is not None and name not in OPTIONS and name in preferences.options:
            words.append(preferences.options[name])
        else:
            words.append(word)
    return " ".join(words)


def _square_depths(text: str) -> list[int]:
    """The depth of unescaped ``[…]`` before each index (one pass), for telling prompt editing's ``::`` apart."""
    depths = [0] * (len(text) + 1)
    depth, escaped = 0, False
    for index, char in enumerate(text):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "[":
            depth += 1
        elif char == "]" and depth:
            depth -= 1
        depths[index + 1] = depth
    return depths


def _segments(text: str) -> tuple[WeightedPrompt, ...]:
    """``space::2 ship`` → (space, 2), (ship, 1). Empty segments without a weight (``a::::b``) are skipped."""
    segments: list[WeightedPrompt] = []
    start = 0
    depths = _square_depths(text) if "[" in text else None
    last_close = text.rfind("]")
    for match in _WEIGHT.finditer(text):
        if depths is not None and depths[match.start()] and match.start() < last_close:
            continue  # A1111 prompt editing "[from::when]", not a multi-prompt weight
        piece = text[start : match.start()].strip()
        raw = match[1]
        weight = 1.0
        if raw:
            if not _WEIGHT_NUMBER.fullmatch(raw):
                raise PromptError(
                    f"multi-prompt weight ::{raw[:20]} is not a number; write ::2, ::0.5 or ::-0.5",
                    option="::",
                    value=raw[:50],
                )
            weight = float(raw)
            if abs(weight) > MAX_WEIGHT:
                raise PromptError(
                    f"multi-prompt weight ::{raw} is out of range; allowed -{MAX_WEIGHT:g} to {MAX_WEIGHT:g}",
                    option="::",
                    value=raw,
                )
            if not piece:
                raise PromptError(
                    f"multi-prompt weight ::{raw} has no text before it; write text::{raw}", option="::", value=raw
                )
        if piece:
            segments.append(WeightedPrompt(piece, weight))
        start = match.end()
    tail = text[start:].strip()
    if tail:
        segments.append(WeightedPrompt(tail, 1.0))
    if segments:
        total = math.fsum(s.weight for s in segments)
        if total <= 0:
            raise PromptError(
                f"the multi-prompt weights add up to {total:g}; their sum must be positive",
                option="::",
                value=f"{total:g}",
            )
    return tuple(segments)


def _split(
    text: str, *, preferences: Preferences, cap: int, allow_zoom: bool = False, allow_repeat: bool = True
) -> _Parsed:
    images, rest = _leading_images(text)
    match = _PARAMS_START.search(rest)
    body, area = (rest[: match.start()], rest[match.start() :]) if match else (rest, "")
    _check_dashes(body)
    params = parse_parameters(
        _expand_custom(area, preferences),
        repeat_cap=cap,
        allow_zoom=allow_zoom,
        allow_repeat=allow_repeat,
        custom=tuple(preferences.options),
    )
    body = body.strip()
    return _Parsed(images, body, _segments(body), params)


def _preference_params(preferences: Preferences, cap: int, registry: Registry) -> ParamSet:
    """The suffix over the /settings defaults, each with errors that say where the bad value came from."""
    merged = ParamSet()
    for label, text in (("/settings", preferences.settings), ("/prefer suffix", preferences.suffix)):
        text = normalize_dashes(text).strip()
        if not text:
            continue
        try:
            params = parse_parameters(text, repeat_cap=cap)
            _model(params, registry)  # a stale --v in a stored preference is reported as the preference's fault
        except PromptError as exc:
            raise PromptError(f"in your {label}: {exc.message}", option=exc.option, value=exc.value) from None
        merged = params.over(merged)
    return merged


def _model(params: ParamSet, registry: Registry) -> ModelEntry:
    if params.model is None:
        return registry.default_model()
    kind, version = params.model
    option = params.option_for("model")
    if kind == "name":
        assert version is not None
        try:
            return registry.get(version)
        except RegistryError as exc:
            raise PromptError(str(exc), option=None, value=version) from None
    if kind == "v":
        assert version is not None
        entry = registry.version(version)
        if entry is None:
            available = ", ".join(registry.versions()) or "none (this server has no --v models)"
            raise PromptError(
                f"{option} {version} is not available here; available versions: {available}",
                option=option,
                value=version,
            )
        return entry
    entry = registry.niji(version)
    if entry is None:
        nijis = sorted(n[4:] for n in registry.names() if n.startswith("niji"))
        available = ", ".join(nijis) if nijis else "none (this server has no niji model)"
        shown = f"{option} {version}" if version else option
        raise PromptError(
            f"{shown} is not available here; available niji versions: {available}", option=option, value=version
        )
    return entry


def _check_image_only(parsed: _Parsed) -> None:
    params = parsed.params
    if not parsed.segments:
        for key in ("stylize", "weird"):
            if getattr(params, key) is not None:
                option = params.option_for(key)
                raise PromptError(
                    f"{option} does not work with image-only prompts; add text to the prompt or remove {option}",
                    option=option,
                    value=str(getattr(params, key)),
                )
    if params.image_weight is not None and not parsed.images:
        option = params.option_for("image_weight")
        raise PromptError(
            f"{option} sets the weight of image prompts, and this prompt has none; start the prompt with an image link",
            option=option,
            value=f"{params.image_weight:g}",
        )


def _require_content(parsed: _Parsed) -> None:
    positive = any(s.weight > 0 for s in parsed.segments)
    if positive or len(parsed.images) >= 2:
        return
    if parsed.images:
        raise PromptError(
            "one image link needs text too; add text, or give at least two image links", option=None, value=None
        )
    raise PromptError(
        "the prompt has no text; write what to paint (image links and --parameters alone are not enough)",
        option=None,
        value=None,
    )


def _build(
    *,
    images: tuple[str, ...],
    text: str,
    segments: tuple[WeightedPrompt, ...],
    params: ParamSet,
    registry: Registry,
    display_params: str,
) -> Job:
    entry = _model(params, registry)
    if params.style_weight is not None and not params.style_references:
        option = params.option_for("style_weight")
        raise PromptError(
            f"{option} sets the weight of style references and this prompt has none; add --sref with an image link",
            option=option,
            value=str(params.style_weight),
        )
    aspect = params.aspect or (1, 1)
    width, height = dimensions(entry.native_px, *aspect)
    prompts = segments + tuple(WeightedPrompt(item, -0.5) for item in params.no)
    loras = tuple(lora for s in prompts for lora in parse_loras(s.text))
    emphasis = tuple(span for s in prompts for span in parse_emphasis(s.text))
    display = " ".join(part for part in (*images, text, display_params) if part)
    style: Style | None = "raw" if params.style == "raw" else None
    mode: Mode = params.mode if params.mode in ("fast", "relax", "turbo") else "fast"  # type: ignore[assignment]
    visibility: Visibility = "stealth" if params.visibility == "stealth" else "public"
    return Job(
        prompts=prompts,
        image_prompts=images,
        loras=loras,
        emphasis=emphasis,
        width=width,
        height=height,
        aspect_ratio=f"{aspect[0]}:{aspect[1]}",
        seed=params.seed,
        chaos=params.chaos if params.chaos is not None else 0,
        stylize=params.stylize if params.stylize is not None else 100,
        quality=params.quality if params.quality is not None else 1.0,
        stop=params.stop if params.stop is not None else 100,
        tile=bool(params.tile),
        image_weight=params.image_weight if params.image_weight is not None else 1.0,
        style_references=params.style_references or (),
        style_weight=params.style_weight if params.style_weight is not None else 100,
        weird=params.weird if params.weird is not None else 0,
        style=style,
        model=entry.name,
        mode=mode,
        visibility=visibility,
        draft=bool(params.draft),
        zoom=params.zoom,
        display=display,
        text=text,
        no=params.no,
    )


def _check_length(text: str) -> None:
    if len(text) > MAX_PROMPT_CHARS:
        raise PromptError(
            f"the prompt is {len(text)} characters; at most {MAX_PROMPT_CHARS} are allowed",
            option=None,
            value=str(len(text)),
        )


def _display_params(params: ParamSet) -> str:
    return " ".join(text for key, text in params.shown if key != "repeat")


# ---------------------------------------------------------------------------------------------------------------
# Public API


def parse_imagine(
    text: str, *, registry: Registry, preferences: Preferences | None = None, max_permutations: int = 4
) -> list[Job]:
    """The jobs of one ``/imagine``: one per permutation × repeat, in order, each fully defaulted.

    ``max_permutations`` caps the total number of jobs (permutations × repeats) and the ``--repeat`` value.
    """
    preferences = preferences or Preferences()
    cap = max(1, max_permutations)
    _check_length(text)
    if not text.strip():
        raise PromptError("the prompt is empty; write what to paint", option=None, value=None)
    lower = _preference_params(preferences, cap, registry)
    parsed = [_split(t, preferences=preferences, cap=cap) for t in expand(normalize_dashes(text), cap)]
    total = sum(p.params.repeat or 1 for p in parsed)
    if total > cap:
        raise PromptError(
            f"this prompt would make {count_text(total)} jobs ({len(parsed)} prompts with their --repeat); "
            f"at most {cap} are allowed",
            option="--repeat",
            value=str(total),
        )
    jobs: list[Job] = []
    for one in parsed:
        _require_content(one)
        _check_image_only(one)
        params = one.params.over(lower)
        job = _build(
            images=one.images,
            text=one.text,
            segments=one.segments,
            params=params,
            registry=registry,
            display_params=_display_params(params),
        )
        jobs.extend([job] * (params.repeat or 1))
    return jobs


def parse_blend(
    image_urls: Sequence[str],
    dimensions: str | None,
    *,
    registry: Registry,
    preferences: Preferences | None = None,
) -> Job:
    """``/blend``: 2–5 image links (attachments, so any http(s) link) and ``portrait``/``square``/``landscape``.

    Without ``dimensions`` the suffix's or /settings' ``--ar`` applies, else square. The preferences' other
    parameters (mode, model, --no …) apply as for a prompt. A blend makes one job (``--repeat`` is ignored).
    """
    preferences = preferences or Preferences()
    urls = tuple(u.strip() for u in image_urls)
    if not MIN_BLEND <= len(urls) <= MAX_BLEND:
        raise PromptError(
            f"/blend takes {MIN_BLEND} to {MAX_BLEND} images, not {len(urls)}", option="images", value=str(len(urls))
        )
    for url in urls:
        if not re.fullmatch(r"https?://[^\s/]+/\S*", url, flags=re.IGNORECASE):
            raise PromptError(f"invalid image link {url[:100]!r} for /blend", option="images", value=url[:200])
    given = ParamSet()
    if dimensions is not None:
        ratio = BLEND_DIMENSIONS.get(dimensions.strip().lower())
        if ratio is None:
            raise PromptError(
                f"dimensions {dimensions!r} is not one of portrait, square, landscape",
                option="dimensions",
                value=dimensions,
            )
        given = ParamSet(
            aspect=ratio, shown=(("aspect", f"--ar {ratio[0]}:{ratio[1]}"),), written=(("aspect", "--ar"),)
        )
    params = given.over(_preference_params(preferences, MAX_BLEND, registry))
    return _build(
        images=urls,
        text="",
        segments=(),
        params=params,
        registry=registry,
        display_params=_display_params(params),
    )


def parse_remix(original: Job, edited_text: str, *, registry: Registry, preferences: Preferences | None = None) -> Job:
    """A Remix edit or Custom Zoom modal: the user's edited prompt applied to ``original``.

    Rules: the edited text is parsed like a prompt (one job: no permutations, no ``--repeat``; ``--zoom`` 1–2 is
    allowed and sets ``Job.zoom``). When it has text or image links they replace the original's prompt (its
    segments, ``--no`` items and images); when it holds only parameters, the original prompt is kept and any new
    ``--no`` items are added. Every parameter the edit names wins; every other one keeps the original's value
    (seed included). The /prefer suffix and /settings were already applied to the original and are not applied
    again; custom ``--options`` do expand. A flag cannot be switched off by leaving it out.
    """
    preferences = preferences or Preferences()
    _check_length(edited_text)
    texts = expand(normalize_dashes(edited_text), 10)
    if len(texts) > 1:
        raise PromptError(
            f"a Remix edit makes one job; remove the {{…}} permutations (they would make {len(texts)})",
            option=None,
            value=str(len(texts)),
        )
    parsed = _split(texts[0], preferences=preferences, cap=1, allow_zoom=True, allow_repeat=False)
    params = parsed.params
    if parsed.text or parsed.images:
        _require_content(parsed)
        _check_image_only(parsed)
        images, text, segments, no = parsed.images, parsed.text, parsed.segments, params.no
    else:
        # tuple(): an original rebuilt from stored JSON may hold lists where Job declares tuples.
        original_no = tuple(original.no)
        images, text = tuple(original.image_prompts), original.text
        segments = tuple(p for p in original.prompts if p.text not in original_no or p.weight != -0.5)
        no = original_no + tuple(item for item in params.no if item not in original_no)
    base = _params_of(original, registry)
    merged = replace(params, no=no).over(replace(base, no=()))
    return _build(
        images=images,
        text=text,
        segments=segments,
        params=merged,
        registry=registry,
        display_params=_display_params(merged),
    )


def _params_of(job: Job, registry: Registry) -> ParamSet:
    """A Job's non-default parameters as a ParamSet, so a Remix edit can merge over them."""
    shown: list[tuple[str, str]] = []
    values: dict[str, object] = {}

    def put(key: str, value: object, text: str) -> None:
        values[key] = value
        shown.append((key, text))

    if job.aspect_ratio != "1:1":
        put("aspect", parse_ratio("--ar", job.aspect_ratio), f"--ar {job.aspect_ratio}")
    if job.chaos:
        put("chaos", job.chaos, f"--chaos {job.chaos}")
    if job.quality != 1.0:
        put("quality", job.quality, f"--q {job.quality:g}")
    if job.seed is not None:
        put("seed", job.seed, f"--seed {job.seed}")
    if job.stop != 100:
        put("stop", job.stop, f"--stop {job.stop}")
    if job.style == "raw":
        put("style", "raw", "--style raw")
    if job.stylize != 100:
        put("stylize", job.stylize, f"--stylize {job.stylize}")
    if job.tile:
        put("tile", True, "--tile")
    if job.image_weight != 1.0:
        put("image_weight", job.image_weight, f"--iw {job.image_weight:g}")
    if job.style_references:
        refs = tuple(job.style_references)
        put("style_references", refs, "--sref " + " ".join(refs))
    if job.style_weight != 100:
        put("style_weight", job.style_weight, f"--sw {job.style_weight}")
    if job.weird:
        put("weird", job.weird, f"--weird {job.weird}")
    if job.model != registry.default:
        if re.fullmatch(r"v\d[\d.]*", job.model):
            put("model", ("v", job.model[1:]), f"--v {job.model[1:]}")
        elif re.fullmatch(r"niji\d[\d.]*", job.model):
            put("model", ("niji", job.model[4:]), f"--niji {job.model[4:]}")
    if job.mode != "fast":
        put("mode", job.mode, f"--{job.mode}")
    if job.visibility != "public":
        put("visibility", job.visibility, f"--{job.visibility}")
    if job.draft:
        put("draft", True, "--draft")
    if job.no:
        put("no", tuple(job.no), "--no " + ", ".join(job.no))
    base = replace(ParamSet(shown=tuple(shown)), **values)  # type: ignore[arg-type]
    if "model" not in values and job.model != registry.default:
        # A model with no --v/--niji spelling (e.g. the operator's default changed since): keep it by name.
        base = replace(base, model=("name", job.model))
    return base
