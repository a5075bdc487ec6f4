"""``impasto translate "<prompt>"``: the prompt as the model will read it, CJK text translated, parameters kept.

One line per job (permutations make several). Exit status 0 when the prompt parses, 2 when the command language
refuses it (one line on stderr, as ``impasto explain``), 1 when the configuration or the translator is broken.
Text left as written (a language neither the model nor its translator reads) is named on stderr.
The translator is the worker's (``impasto.engine.translate``), loaded here on the CPU; torch is imported inside.
"""

from __future__ import annotations

import argparse
import json
import sys

from impasto.bots.console._registry import add_registry_option, configured
from impasto.bots.language.errors import PromptError
from impasto.bots.language.parser import parse_imagine


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "translate",
        help="show a prompt as the model will read it (Chinese translated to English)",
        description=(
            "Translate the Chinese (or other CJK) text of a Midjourney-style prompt the way the worker does before "
            "painting, and print the prompt as the model reads it, parameters kept. The translator is the model "
            "registry's choice for the prompt's model ([translation], or the model's own `translator`)."
        ),
    )
    parser.add_argument("prompt", help="the prompt, quoted")
    parser.add_argument("--model", default=None, help="read as this registry model would (default: the prompt's)")
    parser.add_argument("--json", action="store_true", help='print {"jobs": [{"prompt", "read_as", "notes"}]}')
    add_registry_option(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    loaded = configured(args, "impasto translate: configuration error", model=args.model)
    if loaded is None:
        return 1
    settings, registry = loaded
    try:
        jobs = parse_imagine(args.prompt, registry=registry, max_permutations=settings.max_permutations)
    except PromptError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if args.json:
            print(json.dumps({"error": exc.to_json()}, ensure_ascii=False))
        return 2

    from impasto.engine.errors import EngineError
    from impasto.engine.translate import Translation, left_note

    translation = Translation(cache_dir=settings.data_dir / "models", device="cpu")
    rows: list[dict[str, object]] = []
    notes: list[str] = []
    try:
        for job in jobs:
            entry = registry.get(args.model or job.model)
            reading, seconds = translation.read_prompts(((job.display, 1.0),), entry)
            note = left_note(reading.left, entry)
            if note and note not in notes:
                notes.append(note)
            rows.append(
                {
                    "prompt": job.display,
                    "read_as": reading.prompts[0][0],
                    "model": entry.name,
                    "translated": reading.translated,
                    "seconds": round(seconds, 4),
                    "notes": [note] if note else [],
                }
            )
    except EngineError as exc:
        print(f"impasto translate: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"jobs": rows}, ensure_ascii=False, indent=2))
        return 0
    for row in rows:
        print(row["read_as"])
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    return 0
