"""``impasto models``: the registry's models on this machine. ``list`` shows each model's source, whether it is here
and its size on disk; ``pull [NAME]`` fetches one ahead of time, so that a worker's first start (or a worker with
``IMPASTO_MODEL_DOWNLOADS=false``) downloads nothing.

Where a model lives: a Hugging Face id in the Hub's cache (``HF_HOME``; docker-compose puts it on the data volume),
a built-in tiny model under ``IMPASTO_DATA_DIR/models`` (built locally, nothing downloaded), a local folder or a
single ``.safetensors`` file where the registry says (only checked: there is nothing to fetch). A pull fetches what
diffusers' ``from_pretrained`` reads: ``model_index.json`` and, for each component it names, the configs, tokenizer
files and the non-variant safetensors weights, with huggingface_hub's progress bars. The model's prompt translator
(``[translation]`` in the registry, a Hugging Face id), which a worker loads at start-up, comes with it.

torch is imported only to build a tiny model; huggingface_hub only for a Hugging Face id (both come with the ``gpu``
extra, which a worker host has).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from impasto.bots.console._registry import add_registry_option, configured
from impasto.engine.registry import BUILTIN_PREFIX, ModelEntry, Registry, RegistryError

#: Per diffusers component folder: what ``from_pretrained(use_safetensors=True)`` reads without a variant.
COMPONENT_FILES = (
    "*.json",  # configs, tokenizer and scheduler settings, a sharded checkpoint's index
    "*.txt",  # CLIP's merges
    "*.model",  # sentencepiece tokenizers
    "diffusion_pytorch_model.safetensors",
    "diffusion_pytorch_model-*-of-*.safetensors",
    "model.safetensors",
    "model-*-of-*.safetensors",
)


#: What a translator's ``from_pretrained(use_safetensors=True)`` reads (MarianMT: configs, sentencepiece, vocab).
TRANSLATOR_FILES = ("*.json", "*.txt", "*.model", "*.spm", "model.safetensors", "model-*-of-*.safetensors")


@dataclass(frozen=True)
class ModelState:
    """One registry model on this machine."""

    name: str
    source: str
    kind: str  # builtin | hub | folder | file
    present: bool
    size_bytes: int | None  # on disk, when present
    path: str | None  # where it is, when present
    default: bool = False


def source_kind(source: str) -> str:
    if source.startswith(BUILTIN_PREFIX):
        return "builtin"
    path = Path(source).expanduser()
    if path.suffix == ".safetensors":
        return "file"
    if path.is_absolute() or source.startswith((".", "~")) or path.is_dir() or source.count("/") != 1:
        return "folder"
    return "hub"


def folder_bytes(path: Path) -> int:
    """Bytes of every file under ``path`` (symlinks followed: the Hub's snapshots link to its blobs)."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _hub_cache() -> Path:
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def _tiny_folder(entry: ModelEntry, cache_dir: Path) -> Path:
    return cache_dir / f"tiny-{entry.family}"  # engine.tiny.ensure_tiny_model's folder


def state_of(entry: ModelEntry, cache_dir: Path, *, default: bool = False) -> ModelState:
    """Whether ``entry``'s weights are on this machine, where, and how large (reads the disk only)."""
    kind = source_kind(entry.source)
    where: Path | None = None
    if kind == "builtin":
        folder = _tiny_folder(entry, cache_dir)
        where = folder if (folder / "model_index.json").is_file() else None
    elif kind == "file":
        file = Path(entry.source).expanduser()
        where = file if file.is_file() else None
    elif kind == "folder":
        folder = Path(entry.source).expanduser()
        where = folder if (folder / "model_index.json").is_file() else None
    else:
        where = hub_snapshot(entry.source, "model_index.json")
    return ModelState(
        name=entry.name,
        source=entry.source,
        kind=kind,
        present=where is not None,
        size_bytes=folder_bytes(where) if where is not None else None,
        path=str(where) if where is not None else None,
        default=default,
    )


def hub_snapshot(repo: str, index_file: str) -> Path | None:
    """The Hub cache's snapshot of ``repo`` when it holds ``index_file`` and safetensors weights, else None."""
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(repo, index_file, cache_dir=_hub_cache())
    except ValueError:  # not a valid Hugging Face id: nothing of it can be in the cache
        return None
    if not isinstance(found, str):
        return None
    snapshot = Path(found).parent
    return snapshot if any(snapshot.rglob("*.safetensors")) else None


def hub_translator(entry: ModelEntry) -> str | None:
    """The Hugging Face id of ``entry``'s prompt translator, when it has one that comes from the Hub."""
    translator = entry.translator
    if translator is None or source_kind(translator.source) != "hub":
        return None
    return translator.source


def pull_patterns(model_index: dict[str, object]) -> list[str]:
    """``allow_patterns`` for ``snapshot_download``: the pipeline's index and each component's files."""
    components = sorted(
        name
        for name, value in model_index.items()
        if not name.startswith("_") and isinstance(value, list) and value and value[0] is not None
    )
    return ["model_index.json", *(f"{component}/{pattern}" for component in components for pattern in COMPONENT_FILES)]


def pull(entry: ModelEntry, cache_dir: Path) -> ModelState:
    """Fetch (or build, or check) ``entry``'s weights; returns where they are. Raises ``PullError``."""
    kind = source_kind(entry.source)
    if kind == "builtin":
        from impasto.engine.tiny import ensure_tiny_model

        cache_dir.mkdir(parents=True, exist_ok=True)
        ensure_tiny_model(entry.family, cache_dir)
    elif kind == "hub":
        import huggingface_hub

        index = huggingface_hub.hf_hub_download(entry.source, "model_index.json", cache_dir=_hub_cache())
        patterns = pull_patterns(json.loads(Path(index).read_text()))
        huggingface_hub.snapshot_download(entry.source, allow_patterns=patterns, cache_dir=_hub_cache())
    translator = hub_translator(entry)
    if translator is not None:  # loaded at the worker's start-up: fetched with the model
        import huggingface_hub

        huggingface_hub.snapshot_download(translator, allow_patterns=list(TRANSLATOR_FILES), cache_dir=_hub_cache())
        if hub_snapshot(translator, "config.json") is None:
            raise PullError(f"model {entry.name}: its translator {translator} has no safetensors weights")
    state = state_of(entry, cache_dir)
    if not state.present:
        what = "folder with a model_index.json" if kind in ("folder", "hub") else ".safetensors file"
        raise PullError(f"model {entry.name}: {entry.source} is not a {what} on this machine")
    return state


def downloads_refused(entry: ModelEntry, cache_dir: Path) -> str | None:
    """``IMPASTO_MODEL_DOWNLOADS=false``: turn huggingface_hub offline for this process (call before it is imported)
    and say, in one line, why a worker must not start when its first model is not on this machine."""
    os.environ["HF_HUB_OFFLINE"] = "1"  # any later load of a missing model fails instead of downloading
    missing: str | None = None
    if not state_of(entry, cache_dir).present and source_kind(entry.source) != "builtin":  # tiny: built locally
        missing = f"model {entry.name} ({entry.source})"
    elif (translator := hub_translator(entry)) is not None and hub_snapshot(translator, "config.json") is None:
        missing = f"the prompt translator of model {entry.name} ({translator})"
    if missing is None:
        return None
    return (
        f"{missing} is not on this machine and IMPASTO_MODEL_DOWNLOADS=false: "
        f"run `impasto models pull {entry.name}` first"
    )


class PullError(RuntimeError):
    """A model that cannot be fetched or is not where the registry says; the message is one line."""


def human_bytes(size: int | None) -> str:
    """Decimal units, as the Hub shows sizes: ``13.9 GB``."""
    if size is None:
        return "-"
    if size < 1000:
        return f"{size} B"
    value, unit = float(size) / 1000, "KB"
    for bigger in ("MB", "GB", "TB"):
        if value < 1000:
            break
        value, unit = value / 1000, bigger
    return f"{value:.1f} {unit}"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "models",
        help="the registry's models on this machine: list them, or pull one ahead of a worker's start",
        description=(
            "list: each registry model's source, whether it is on this machine and its size on disk. "
            "pull [NAME]: download a Hugging Face model into the Hub's cache (HF_HOME), build a tiny one under "
            "IMPASTO_DATA_DIR/models, or check that a local folder or file is there; NAME defaults to the "
            "registry's default model."
        ),
    )
    add_registry_option(p)
    p.add_argument("--list", dest="list_flag", action="store_true", help="the same as `impasto models list`")
    p.add_argument("--json", action="store_true", help="list: one JSON object per model, one a line")
    sub = p.add_subparsers(dest="models_command")
    listing = sub.add_parser("list", help="each model's source, whether it is here, its size on disk")
    listing.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="one JSON object a model")
    pulling = sub.add_parser("pull", help="fetch a model into the cache now (with a progress bar)")
    pulling.add_argument("name", nargs="?", default=None, help="a registry model (default: the default model)")
    for child in (listing, pulling):  # also after the verb; SUPPRESS keeps a value given before it
        child.add_argument("--model-registry", type=Path, default=argparse.SUPPRESS, metavar="PATH", help="as above")
    p.set_defaults(handler=run_models)


def run_models(args: argparse.Namespace) -> int:
    loaded = configured(args, "impasto models")
    if loaded is None:
        return 2
    settings, registry = loaded
    cache_dir = settings.data_dir / "models"
    if args.models_command == "pull":
        return _pull(registry, args.name or registry.default, cache_dir)
    return _list(registry, cache_dir, as_json=args.json)


def _list(registry: Registry, cache_dir: Path, *, as_json: bool) -> int:
    try:
        states = [state_of(registry.get(n), cache_dir, default=n == registry.default) for n in registry.names()]
    except ImportError:
        print("impasto models: huggingface_hub is not installed (the `gpu` extra)", file=sys.stderr)
        return 2
    if as_json:
        for state in states:
            print(json.dumps(asdict(state)))
        return 0
    width = max(len(s.name) for s in states) + 2
    source_width = max(len(s.source) for s in states)
    print(f"{'model':<{width}} {'source':<{source_width}}  {'kind':<7}  {'here':<4}  size")
    for s in states:
        name = f"{s.name}{' *' if s.default else ''}"
        here = "yes" if s.present else "no"
        print(f"{name:<{width}} {s.source:<{source_width}}  {s.kind:<7}  {here:<4}  {human_bytes(s.size_bytes)}")
    print("* the default model. `impasto models pull NAME` fetches one.")
    return 0


def _pull(registry: Registry, name: str, cache_dir: Path) -> int:
    try:
        entry = registry.get(name)
    except RegistryError:
        print(f"impasto models: no model {name!r} (known: {', '.join(registry.names())})", file=sys.stderr)
        return 2
    kind = source_kind(entry.source)
    verb = {"builtin": "building", "hub": "downloading", "folder": "checking", "file": "checking"}[kind]
    print(f"{name}: {verb} {entry.source}", file=sys.stderr)
    try:
        state = pull(entry, cache_dir)
    except ImportError:
        print("impasto models: pulling needs the `gpu` extra (torch, diffusers, huggingface_hub)", file=sys.stderr)
        return 2
    except PullError as exc:
        print(f"impasto models: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # the Hub unreachable, a gated repository, a full disk: huggingface_hub's one line
        print(
            f"impasto models: {name}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}", file=sys.stderr
        )
        return 1
    print(f"{name}: {human_bytes(state.size_bytes)} in {state.path}")
    return 0
