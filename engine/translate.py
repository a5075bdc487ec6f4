"""Prompts in Chinese (and other CJK languages) → English before the text encoders read them, on the worker.

SD 1.5 and SDXL read through CLIP text encoders trained on English; a Chinese prompt reaches them as noise. The
engine therefore hands every CJK *run* of the prompt (``engine/cjk.py``) to a translation model and puts the English
back where the run was, so the structure survives: ``::`` weights stay per segment, each ``--no`` item is its own
segment, emphasis brackets and weights, ``<lora:…>`` tags and links are never inside a run.

Which translator, if any, is the registry's choice per model (``ModelEntry.translator``, ``[translation]``); a model
that reads a language itself (``reads = ["en", "zh"]``) gets that language as written. Text in a language that
neither the model nor the translator reads is left as written and the reading says so.

Translations are cached per translator (an LRU of runs): a prompt re-rolled, varied or upscaled, or a run shared by
the permutations of one prompt, is translated once per worker.
"""

from __future__ import annotations

import contextlib
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from impasto.engine.cjk import LANGUAGE_NAMES, Span, fit_into, has_kana, split_runs
from impasto.engine.errors import EngineError, UnsafeCheckpoint
from impasto.engine.provenance import negative_text, prompt_text
from impasto.engine.registry import BUILTIN_PREFIX, ModelEntry, TranslatorEntry
from impasto.engine.spec import Prompt, RenderResult, RenderSpec

#: Runs kept per translator. A run is a few dozen characters; 4096 of them are well under a megabyte.
CACHE_SIZE = 4096
_PICKLE_SUFFIXES = (".ckpt", ".bin", ".pt", ".pth", ".pkl")

BatchTranslate = Callable[[list[str]], list[str]]


class TranslatorUnavailable(EngineError):
    """The configured translation model cannot be loaded (missing folder, no safetensors weights, no network)."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"the prompt translator {source} cannot be loaded ({reason}); nothing was charged")
        self.source = source


class Translator:
    """One transformers seq2seq model into English, with an LRU of the runs it has translated."""

    def __init__(self, entry: TranslatorEntry, *, cache_dir: Path, device: torch.device | str = "cpu") -> None:
        self.entry = entry
        self.device = torch.device(device)
        self.tokenizer, self.model = _load(entry.source, cache_dir, self.device)
        self.cache_size = CACHE_SIZE
        self._cache: OrderedDict[str, str] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def translate(self, runs: Sequence[str]) -> list[str]:
        """English for each run, in order. Runs not in the cache are translated together, in one batch.

        We keep our own LRU rather than ``functools.lru_cache`` because misses are batched into one ``generate``.
        """
        missing = [r for r in dict.fromkeys(runs) if r not in self._cache]
        self.misses += len(missing)
        self.hits += len(set(runs)) - len(missing)
        if missing:
            for run, english in zip(missing, self._generate(missing), strict=True):
                self._cache[run] = english
        out = []
        for run in runs:
            self._cache.move_to_end(run)
            out.append(self._cache[run])
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return out

    @torch.no_grad()
    def _generate(self, texts: list[str]) -> list[str]:
        batch = self.tokenizer(texts, return_tensors="pt", padding=True, truncation=True).to(self.device)
        longest = int(batch["input_ids"].shape[1])
        out = self.model.generate(**batch, max_new_tokens=min(512, 16 + 3 * longest))
        decoded: list[str] = self.tokenizer.batch_decode(out, skip_special_tokens=True)
        return decoded


def _load(source: str, cache_dir: Path, device: torch.device) -> tuple[Any, Any]:
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    if source.lower().endswith(_PICKLE_SUFFIXES):
        raise UnsafeCheckpoint(source)
    from impasto.engine.loading import _quiet_loading

    where = source
    local = True
    if source.startswith(BUILTIN_PREFIX):
        from impasto.engine.tiny_translator import ensure_tiny_translator

        with _quiet_loading():
            where = str(ensure_tiny_translator(cache_dir))
    elif Path(source).expanduser().is_dir():
        where = str(Path(source).expanduser())
    else:
        local = False  # a Hugging Face id: the download shows huggingface_hub's progress bars
    try:
        with _quiet_loading() if local else contextlib.nullcontext():
            tokenizer = AutoTokenizer.from_pretrained(where)
            model = AutoModelForSeq2SeqLM.from_pretrained(where, use_safetensors=True)
    except (OSError, ValueError, ImportError) as exc:
        raise TranslatorUnavailable(source, str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from exc
    model.to(device)
    model.eval()
    return tokenizer, model


# --- Reading a prompt -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PromptReading:
    """Prompts as the model reads them, and what was left as written (runs no one here reads)."""

    prompts: tuple[Prompt, ...]
    translated: bool
    left: tuple[Span, ...] = ()


def read_prompts(
    prompts: tuple[Prompt, ...],
    *,
    reads: Sequence[str],
    languages: Sequence[str],
    translate: BatchTranslate | None,
) -> PromptReading:
    """Translate the runs in a language the model does not read and the translator does; keep everything else.

    ``reads``: the model's languages; ``languages``: the translator's (ignored when ``translate`` is None).
    """
    kana = has_kana([t for t, _ in prompts])
    split = [split_runs(text, kana_in_prompt=kana) for text, _ in prompts]
    foreign = [s for spans in split for s in spans if s.language is not None and s.language not in reads]
    wanted = [s.text for s in foreign if translate is not None and s.language in languages]
    left = tuple(s for s in foreign if s.text not in wanted)
    if not wanted or translate is None:
        return PromptReading(prompts, False, left)
    unique = list(dict.fromkeys(wanted))
    english = dict(zip(unique, translate(unique), strict=True))
    out: list[Prompt] = []
    for spans, (_, weight) in zip(split, prompts, strict=True):
        pieces = [s.text for s in spans]
        for i, span in enumerate(spans):
            if span.text in english:
                before, after = "".join(pieces[:i]), "".join(s.text for s in spans[i + 1 :])
                pieces[i] = fit_into(english[span.text], before, after)
        out.append(("".join(pieces), weight))
    return PromptReading(tuple(out), True, left)


def reading_text(prompts: tuple[Prompt, ...]) -> str:
    """The prompts as one line a user can read back: ``::`` weights as written, negatives as ``--no``."""
    positive = prompt_text(prompts)
    negative = negative_text(prompts)
    return f"{positive} --no {negative}" if negative else positive


def left_note(left: Sequence[Span], entry: ModelEntry) -> str | None:
    """One line saying which text is left as written, and why: the model does not read it, nor any translator."""
    if not left:
        return None
    languages = list(dict.fromkeys(s.language for s in left if s.language is not None))
    names = " and ".join(LANGUAGE_NAMES[lang] for lang in languages)
    reads = ", ".join(LANGUAGE_NAMES.get(x, x) for x in entry.reads)
    if entry.translator is None:
        why = "and no translator is configured for it"
    else:
        knows = ", ".join(LANGUAGE_NAMES.get(x, x) for x in entry.translator.languages)
        why = f"and its translator reads {knows} only"
    sample = "、".join(dict.fromkeys(s.text for s in left))
    if len(sample) > 40:
        sample = sample[:39] + "…"
    return f"{names} text left as written ({sample}): model {entry.name} reads {reads}, {why}"


@dataclass(frozen=True)
class Reading:
    """One spec as its model will read it, plus what users are shown about that."""

    spec: RenderSpec  # the spec the engine paints (``original_prompts`` set when something was translated)
    read_as: str | None  # the prompt in the model's words, None when nothing was translated
    seconds: float  # time spent translating (0 when nothing was translated; near 0 when the cache had it all)
    notes: tuple[str, ...] = ()

    def stamp(self, result: RenderResult) -> RenderResult:
        """The result with the reading added (``read_as``, ``translate_s``, notes); elapsed time includes it."""
        return replace(
            result,
            read_as=self.read_as,
            translate_s=self.seconds,
            untranslated=result.untranslated + self.notes,
            elapsed_s=result.elapsed_s + self.seconds,
        )


class Translation:
    """The engine's translators, loaded on first use and kept: one per source (models may share one)."""

    def __init__(self, *, cache_dir: Path, device: torch.device | str = "cpu") -> None:
        self.cache_dir = cache_dir
        self.device = torch.device(device)
        self._translators: dict[str, Translator] = {}
        # Called with the English of the painted (positive) segments before anything is painted: raise an
        # EngineError to refuse it. The worker sets it to the moderation check (``queue/screening.py``), so that a
        # translation is checked as the original was at admission (``--no`` items steer away: not checked).
        self.screen: Callable[[str], None] | None = None

    def translator(self, entry: TranslatorEntry) -> Translator:
        if entry.source not in self._translators:
            self._translators[entry.source] = Translator(entry, cache_dir=self.cache_dir, device=self.device)
        return self._translators[entry.source]

    def preload(self, entry: ModelEntry) -> None:
        """Load ``entry``'s translator now (worker start-up): a download or a broken source shows at start, not as
        the first Chinese prompt's job waiting on a download past the step timeout."""
        if entry.translator is not None:
            self.translator(entry.translator)

    def read_prompts(self, prompts: tuple[Prompt, ...], entry: ModelEntry) -> tuple[PromptReading, float]:
        """``prompts`` as ``entry``'s model reads them, and the seconds it took."""
        started = time.perf_counter()
        choice = entry.translator
        translate: BatchTranslate | None = None
        if choice is not None and _needs_translator(prompts, entry, choice):
            translate = self.translator(choice).translate
        reading = read_prompts(
            prompts, reads=entry.reads, languages=choice.languages if choice else (), translate=translate
        )
        return reading, time.perf_counter() - started if reading.translated else 0.0

    def read(self, spec: RenderSpec, entry: ModelEntry) -> Reading:
        prompt_reading, seconds = self.read_prompts(spec.prompts, entry)
        note = left_note(prompt_reading.left, entry)
        notes = (note,) if note else ()
        if not prompt_reading.translated:
            return Reading(spec, None, 0.0, notes)
        translated = replace(spec, prompts=prompt_reading.prompts, original_prompts=spec.prompts)
        read_as = reading_text(prompt_reading.prompts)
        if self.screen is not None:
            self.screen(prompt_text(prompt_reading.prompts))
        return Reading(translated, read_as, seconds, notes)


def _needs_translator(prompts: tuple[Prompt, ...], entry: ModelEntry, choice: TranslatorEntry) -> bool:
    """Load a translator only for a prompt that has text for it: English-only servers never load one."""
    kana = has_kana([t for t, _ in prompts])
    return any(
        s.language is not None and s.language not in entry.reads and s.language in choice.languages
        for text, _ in prompts
        for s in split_runs(text, kana_in_prompt=kana)
    )
