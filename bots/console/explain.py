"""``impasto explain "<prompt>"``: how impasto reads a prompt, for people (rich) or machines (``--json``).

Exit status 0 when the prompt parses, 2 when it is refused (the one-line reason on stderr; with ``--json`` also
``{"error": {"message", "option", "value"}}`` on stdout), 1 when the operator's configuration is broken.
"""

from __future__ import annotations

import argparse
import json
import sys

from impasto.bots.console._registry import add_registry_option, configured
from impasto.bots.language.errors import PromptError
from impasto.bots.language.job import Job
from impasto.bots.language.parser import parse_imagine
from impasto.bots.language.prefs import Preferences
from impasto.engine.registry import Registry


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "explain",
        help="show how a prompt is understood (no rendering)",
        description=(
            "Parse a Midjourney-style prompt — [image links] text [--parameters] — and show the jobs it makes. "
            "Parameters: --ar/--aspect W:H, --chaos/--c, --quality/--q, --repeat/--r, --seed, --stop, --style raw, "
            "--raw, --stylize/--s, --tile, --iw, --sref URL…, --sw, --weird/--w, --no a, b, --v/--version N, "
            "--niji [N], --fast/--relax/--turbo, --public/--stealth, --draft."
        ),
    )
    parser.add_argument("prompt", help="the prompt, quoted")
    parser.add_argument("--json", action="store_true", help='print {"jobs": [...]} (or {"error": ...}) as JSON')
    add_registry_option(parser)
    parser.add_argument(
        "--max-permutations",
        type=int,
        default=None,
        metavar="N",
        help="cap on jobs from permutations × --repeat (default: IMPASTO_MAX_PERMUTATIONS, 4)",
    )
    parser.add_argument("--suffix", default="", help="a /prefer suffix to apply (parameters only)")
    parser.add_argument("--settings", default="", help="/settings defaults as parameters, e.g. '--style raw --relax'")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    loaded = configured(args, "impasto explain: configuration error")
    if loaded is None:
        return 1
    settings, registry = loaded
    cap = args.max_permutations if args.max_permutations is not None else settings.max_permutations
    try:
        preferences = Preferences(suffix=args.suffix, settings=args.settings)
        jobs = parse_imagine(args.prompt, registry=registry, preferences=preferences, max_permutations=cap)
    except PromptError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if args.json:
            print(json.dumps({"error": exc.to_json()}, ensure_ascii=False))
        return 2
    if args.json:
        print(json.dumps({"jobs": [job.to_json() for job in jobs]}, ensure_ascii=False, indent=2))
    else:
        _print_jobs(jobs, registry)
    return 0


def _print_jobs(jobs: list[Job], registry: Registry) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(highlight=False)
    console.print(f"[bold]{len(jobs)} job{'s' if len(jobs) != 1 else ''}[/bold] (each paints a 2×2 grid)")
    for index, job in enumerate(jobs, start=1):
        console.print()
        console.print(f"[bold]Job {index}[/bold]: {escape(job.display)}", soft_wrap=True)
        if job.prompts:
            segments = Table("segment", "weight", "role", title=None, show_edge=False)
            for prompt in job.prompts:
                role = "avoid" if prompt.weight < 0 else "paint"
                segments.add_row(escape(prompt.text), f"{prompt.weight:g}", role)
            console.print(segments)
        details = Table(show_header=False, show_edge=False, box=None)
        details.add_column(style="bold")
        details.add_column()
        for url in job.image_prompts:
            details.add_row("image prompt", escape(url))
        for url in job.style_references:
            details.add_row("style reference", escape(url))
        for lora in job.loras:
            details.add_row("LoRA", escape(f"{lora.name} × {lora.weight:g}"))
        for span in job.emphasis:
            details.add_row("emphasis", escape(f"{span.text!r} × {span.weight:g}"))
        entry = registry.get(job.model)
        model = f"{job.model} ({entry.family}, {entry.source})"
        if entry.is_tiny:
            model += " — a built-in tiny model with random weights: it paints noise"
        details.add_row("model", escape(model))
        details.add_row("size", f"{job.width}×{job.height} px (aspect {job.aspect_ratio})")
        details.add_row("seed", "chosen when the job starts" if job.seed is None else str(job.seed))
        for name, value in (
            ("chaos", job.chaos),
            ("stylize", job.stylize),
            ("quality", f"{job.quality:g}"),
            ("stop", f"{job.stop}%"),
            ("tile", "yes" if job.tile else "no"),
            ("image weight", f"{job.image_weight:g}"),
            ("style weight", job.style_weight),
            ("weird", job.weird),
            ("style", job.style or "default"),
            ("speed", job.mode),
            ("visibility", job.visibility),
            ("draft", "yes" if job.draft else "no"),
        ):
            details.add_row(name, str(value))
        console.print(details)
