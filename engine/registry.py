"""The model registry: the operator's TOML file that maps `--v` / `--niji` names to diffusion models.

Pure Python on purpose (no torch): the command language on bot hosts reads it to validate `--v` and to size images.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast

Family = Literal["sd15", "sdxl"]
FAMILIES: tuple[Family, ...] = ("sd15", "sdxl")
DEFAULT_REGISTRY_PATH = Path(__file__).with_name("models.toml")
BUILTIN_PREFIX = "builtin:"
#: The built-in tiny translator (``engine/tiny_translator.py``): knows a small phrase book, nothing else.
TINY_TRANSLATOR = BUILTIN_PREFIX + "tiny-zh-en"
#: Languages a translator or a model may be said to read (``cjk.Language`` plus English).
LANGUAGES = ("en", "zh", "ja", "ko")


def scaled_steps(base: int, quality: float, halve: bool) -> int:
    """``--q`` multiplies the model's steps (.25/.5/1/2); ``--draft`` without a few-step variant halves them."""
    steps = max(1, round(base * quality))
    return max(1, steps // 2) if halve else steps


class RegistryError(ValueError):
    """The registry file is malformed, or a name is not in it."""


@dataclass(frozen=True)
class TranslatorEntry:
    """A translation model put before a diffusion model's text encoders (``engine/translate.py``).

    ``source``: a Hugging Face id of a transformers seq2seq model into English (MarianMT ``opus-mt-zh-en`` & co),
    a local folder of one, or the built-in tiny one. ``languages``: what it translates from.
    """

    source: str
    languages: tuple[str, ...] = ("zh",)


@dataclass(frozen=True)
class AdapterEntry:
    """An IP-Adapter for image references (``engine/references.py``), loaded with diffusers' ``load_ip_adapter``.

    ``source``: a Hugging Face id or a local folder (or the built-in tiny one); ``weights``: the adapter file in
    ``subfolder`` (safetensors only); ``encoder``: the CLIP vision encoder's folder, relative to ``subfolder`` when it
    has no ``/``, else to ``source`` (diffusers' ``image_encoder_folder``).
    """

    source: str
    weights: str = "ip-adapter.safetensors"
    subfolder: str = ""
    encoder: str = "image_encoder"


@dataclass(frozen=True)
class ModelEntry:
    name: str
    family: Family
    source: str
    native_px: int
    steps: int
    guidance: float
    scheduler: str | None = None
    #: Few-step models: "trailing" puts the few steps at the end of the noise schedule (SDXL-Turbo, Lightning).
    timestep_spacing: str | None = None
    #: The registry name of this model's few-step variant, used by ``--draft`` (Midjourney's draft mode).
    draft: str | None = None
    #: Super-resolution weights for Upscale (a .safetensors / .pth file, or builtin:tiny-sr); None: the old
    #: Lanczos + img2img path.
    upscaler: str | None = None
    #: The CLIP checkpoint /describe ranks phrases with (a Hugging Face id or local folder, or builtin:tiny-clip).
    describer: str | None = None
    #: For a single-file ``source``: a local diffusers folder with the model's configs and tokenizers, so the file
    #: loads without the Hugging Face Hub (``from_single_file(config=…)``).
    config: str | None = None
    #: A LoRA fused into the weights at load (an LCM-LoRA or a Lightning LoRA turns a base model few-step), at
    #: ``lora_scale``.
    lora: str | None = None
    lora_scale: float = 1.0
    # The languages the model's text encoders understand: text in any other CJK language goes to the translator.
    reads: tuple[str, ...] = ("en",)
    translator: TranslatorEntry | None = None  # None: nothing is translated for this model
    #: The IP-Adapter for image prompts, /blend and --sref; None: image prompts and /blend average VAE latents and
    #: --sref is refused.
    ip_adapter: AdapterEntry | None = None

    @property
    def is_tiny(self) -> bool:
        """Built-in tiny models have random weights: they paint noise, and the CLI says so."""
        return self.source.startswith(BUILTIN_PREFIX)

    @property
    def native_pixels(self) -> int:
        return self.native_px * self.native_px


TINY_UPSCALER = BUILTIN_PREFIX + "tiny-sr"
TINY_DESCRIBER = BUILTIN_PREFIX + "tiny-clip"
TINY_IP_ADAPTER = BUILTIN_PREFIX + "tiny-ip-adapter"
UPSCALER_SUFFIXES = (".safetensors", ".pth")

# Tiny models: the real diffusers classes at a tiny config (built by impasto.engine). A 256 px native side keeps
# the aspect-ratio sizing meaningful (multiples of 64) while staying cheap on a CPU.
_TINY_TRANSLATOR = TranslatorEntry(TINY_TRANSLATOR)
BUILTIN_MODELS: tuple[ModelEntry, ...] = (
    ModelEntry(
        "tiny-sd15",
        "sd15",
        BUILTIN_PREFIX + "tiny-sd15",
        256,
        4,
        7.5,
        upscaler=TINY_UPSCALER,
        describer=TINY_DESCRIBER,
        translator=_TINY_TRANSLATOR,
        ip_adapter=AdapterEntry(TINY_IP_ADAPTER),
    ),
    ModelEntry(
        "tiny-sdxl",
        "sdxl",
        BUILTIN_PREFIX + "tiny-sdxl",
        256,
        4,
        7.0,
        draft="tiny-sdxl-turbo",
        upscaler=TINY_UPSCALER,
        describer=TINY_DESCRIBER,
        translator=_TINY_TRANSLATOR,
        ip_adapter=AdapterEntry(TINY_IP_ADAPTER),
    ),
    # Few-step stand-ins with the settings of the real kinds: SDXL-Turbo (1 step, no guidance, trailing) and an
    # LCM model (LCMScheduler, 4 steps, guidance 1 = off).
    ModelEntry(
        "tiny-sdxl-turbo",
        "sdxl",
        BUILTIN_PREFIX + "tiny-sdxl",
        256,
        1,
        0.0,
        "EulerAncestralDiscreteScheduler",
        "trailing",
        translator=_TINY_TRANSLATOR,
    ),
    ModelEntry(
        "tiny-sd15-lcm", "sd15", BUILTIN_PREFIX + "tiny-sd15", 256, 4, 1.0, "LCMScheduler", translator=_TINY_TRANSLATOR
    ),
)
TIMESTEP_SPACINGS = ("leading", "linspace", "trailing")


@dataclass(frozen=True)
class Registry:
    models: dict[str, ModelEntry]
    default: str

    def get(self, name: str) -> ModelEntry:
        try:
            return self.models[name]
        except KeyError:
            raise RegistryError(f"unknown model {name!r}; available: {', '.join(self.names())}") from None

    def names(self) -> list[str]:
        return sorted(self.models)

    def for_render(self, name: str, draft: bool) -> tuple[ModelEntry, bool]:
        """The model that paints a job and whether its steps are halved: ``--draft`` takes the model's few-step
        variant when the registry names one (run at that variant's own steps), else halves the model's steps."""
        entry = self.get(name)
        if draft and entry.draft:
            return self.get(entry.draft), False
        return entry, draft

    def planned_steps(self, name: str, quality: float, draft: bool) -> int:
        """The denoising steps a txt2img job will run (for cost estimates before the job runs): the engine's rule."""
        entry, halve = self.for_render(name, draft)
        return scaled_steps(entry.steps, quality, halve)

    def default_model(self) -> ModelEntry:
        return self.get(self.default)

    def version(self, version: str) -> ModelEntry | None:
        """The model for `--v VERSION` ("6" → "v6"), or None when there is none."""
        return self.models.get(f"v{version}")

    def versions(self) -> list[str]:
        return sorted(n[1:] for n in self.models if n.startswith("v") and n[1:2].isdigit())

    def niji(self, version: str | None) -> ModelEntry | None:
        """The model for `--niji VERSION`; with no version, the newest niji model."""
        if version is not None:
            return self.models.get(f"niji{version}")
        nijis = sorted(n for n in self.models if n.startswith("niji"))
        return self.models[nijis[-1]] if nijis else None


def _languages(where: str, raw: object) -> tuple[str, ...]:
    if not isinstance(raw, list) or not raw or any(x not in LANGUAGES for x in raw):
        raise RegistryError(f"{where} must be a list of languages among {', '.join(LANGUAGES)}, not {raw!r}")
    return tuple(str(x) for x in raw)


def _translator(where: str, raw: object, languages: tuple[str, ...]) -> TranslatorEntry | None:
    """``"off"`` → None; a Hugging Face id, folder or ``builtin:tiny-zh-en`` → that translator."""
    if raw is None or raw == "off":
        return None
    if not isinstance(raw, str) or not raw.strip():
        raise RegistryError(f'{where} must be "off", a Hugging Face id or a folder of a translation model')
    if raw.startswith(BUILTIN_PREFIX) and raw != TINY_TRANSLATOR:
        raise RegistryError(f"{where}: the only built-in translator is {TINY_TRANSLATOR}")
    return TranslatorEntry(raw.strip(), languages)


def translation_default(data: dict[str, object]) -> TranslatorEntry | None:
    """The ``[translation]`` table (``IMPASTO_TRANSLATOR`` overrides its model): every entry's translator unless
    the entry names its own. Absent: translation is off."""
    table = data.get("translation", {})
    if not isinstance(table, dict):
        raise RegistryError("[translation] must be a table")
    languages = _languages("[translation] languages", table.get("languages", ["zh"]))
    model = os.environ.get("IMPASTO_TRANSLATOR") or table.get("model")
    return _translator("[translation] model", model, languages)


def _entry(
    name: str,
    raw: object,
    default_upscaler: object = None,
    default_describer: object = None,
    translation: TranslatorEntry | None = None,
) -> ModelEntry:
    if not isinstance(raw, dict):
        raise RegistryError(f"[models.{name}] must be a table")
    family = raw.get("family")
    if family not in FAMILIES:
        raise RegistryError(f"[models.{name}] family must be one of {', '.join(FAMILIES)}, not {family!r}")
    source = raw.get("source")
    if not isinstance(source, str) or not source:
        raise RegistryError(f"[models.{name}] needs a source (Hugging Face id, folder or .safetensors file)")
    native_px = raw.get("native_px", 1024 if family == "sdxl" else 512)
    if not isinstance(native_px, int) or native_px % 64 or not 256 <= native_px <= 2048:
        raise RegistryError(f"[models.{name}] native_px must be a multiple of 64 between 256 and 2048")
    steps = raw.get("steps", 30)
    guidance = raw.get("guidance", 7.0)
    scheduler = raw.get("scheduler")
    if not isinstance(steps, int) or steps < 1:
        raise RegistryError(f"[models.{name}] steps must be a positive whole number")
    if not isinstance(guidance, int | float):
        raise RegistryError(f"[models.{name}] guidance must be a number")
    if guidance < 0:
        raise RegistryError(f"[models.{name}] guidance must be 0 or more (1 or less turns guidance off)")
    if scheduler is not None and not isinstance(scheduler, str):
        raise RegistryError(f"[models.{name}] scheduler must be a diffusers scheduler class name")
    spacing = raw.get("timestep_spacing")
    if spacing is not None and spacing not in TIMESTEP_SPACINGS:
        raise RegistryError(f"[models.{name}] timestep_spacing must be one of {', '.join(TIMESTEP_SPACINGS)}")
    draft = raw.get("draft")
    if draft is not None and (not isinstance(draft, str) or draft == name):
        raise RegistryError(f"[models.{name}] draft must name another model of the registry (its few-step variant)")
    upscaler = raw.get("upscaler", default_upscaler)
    if upscaler is not None and (
        not isinstance(upscaler, str) or not (upscaler == TINY_UPSCALER or upscaler.lower().endswith(UPSCALER_SUFFIXES))
    ):
        raise RegistryError(
            f"[models.{name}] upscaler must be a .safetensors or .pth super-resolution file (or {TINY_UPSCALER})"
        )
    describer = raw.get("describer", default_describer)
    if describer is not None and (not isinstance(describer, str) or not describer):
        raise RegistryError(f"[models.{name}] describer must name a CLIP checkpoint (Hugging Face id or folder)")
    config = raw.get("config")
    if config is not None and (not isinstance(config, str) or not source.lower().endswith(".safetensors")):
        raise RegistryError(f"[models.{name}] config (a local diffusers folder) goes with a single .safetensors source")
    reads = _languages(f"[models.{name}] reads", raw.get("reads", ["en"]))
    translator = translation
    if "translator" in raw:
        languages = translation.languages if translation else ("zh",)
        translator = _translator(f"[models.{name}] translator", raw["translator"], languages)
    return ModelEntry(
        name,
        cast(Family, family),
        source,
        native_px,
        steps,
        float(guidance),
        scheduler,
        spacing,
        draft,
        upscaler,
        describer,
        config,
        *_fused_lora(name, raw),
        reads=reads,
        translator=translator,
        ip_adapter=_ip_adapter(name, raw.get("ip_adapter")),
    )


def _ip_adapter(name: str, raw: object) -> AdapterEntry | None:
    """``ip_adapter = "folder"`` (the default file names inside) or a table with source / weights / subfolder /
    encoder."""
    where = f"[models.{name}] ip_adapter"
    if raw is None:
        return None
    if isinstance(raw, str):
        raw = {"source": raw}
    if not isinstance(raw, dict):
        raise RegistryError(f"{where} must be a folder / Hugging Face id or a table with source and weights")
    unknown = sorted(set(raw) - {"source", "weights", "subfolder", "encoder"})
    if unknown:
        raise RegistryError(
            f"{where} has unknown keys {', '.join(unknown)}; allowed source, weights, subfolder, encoder"
        )
    values = {key: raw[key] for key in ("source", "weights", "subfolder", "encoder") if key in raw}
    if not all(isinstance(v, str) for v in values.values()) or not values.get("source"):
        raise RegistryError(f"{where} needs a source (Hugging Face id or folder); every value is a string")
    source = str(values["source"])
    if source.startswith(BUILTIN_PREFIX) and source != TINY_IP_ADAPTER:
        raise RegistryError(f"{where}: the only built-in adapter is {TINY_IP_ADAPTER}")
    if not str(values.get("weights", "x.safetensors")).endswith(".safetensors"):
        raise RegistryError(f"{where} weights must be a .safetensors file (pickles run code when loaded)")
    return AdapterEntry(**{k: str(v) for k, v in values.items()})


def _fused_lora(name: str, raw: dict[str, object]) -> tuple[str | None, float]:
    lora, scale = raw.get("lora"), raw.get("lora_scale", 1.0)
    if lora is not None and (not isinstance(lora, str) or not lora.lower().endswith(".safetensors")):
        raise RegistryError(f"[models.{name}] lora must be a .safetensors file (it is fused into the model at load)")
    if not isinstance(scale, int | float) or not -10 <= scale <= 10:
        raise RegistryError(f"[models.{name}] lora_scale must be a number from -10 to 10")
    return lora, float(scale)


def load_registry(path: Path | None = None, default: str | None = None) -> Registry:
    """Read the registry (``IMPASTO_MODELS`` or the shipped file) and add the built-in tiny models.

    ``default`` (or ``IMPASTO_DEFAULT_MODEL``) overrides the file's own default model.
    """
    if path is None:
        env = os.environ.get("IMPASTO_MODELS")
        path = Path(env) if env else DEFAULT_REGISTRY_PATH
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RegistryError(f"model registry {path} does not exist (set IMPASTO_MODELS)") from None
    except tomllib.TOMLDecodeError as exc:
        raise RegistryError(f"model registry {path} is not valid TOML: {exc}") from None
    raw_models = data.get("models", {})
    if not isinstance(raw_models, dict):
        raise RegistryError(f"model registry {path}: [models] must be a table")
    models = {m.name: m for m in BUILTIN_MODELS}
    translation = translation_default(data)
    for name, raw in raw_models.items():
        # A top-level upscaler / describer serves every model that names none.
        models[name] = _entry(name, raw, data.get("upscaler"), data.get("describer"), translation)
    chosen = default or os.environ.get("IMPASTO_DEFAULT_MODEL") or data.get("default") or "tiny-sdxl"
    registry = Registry(models, str(chosen))
    registry.get(registry.default)  # fail at start-up, not at the first job
    for entry in models.values():
        if entry.draft is not None:
            drafted = models.get(entry.draft)
            if drafted is None or drafted.family != entry.family or drafted.draft is not None:
                raise RegistryError(
                    f"[models.{entry.name}] draft {entry.draft!r} must be another {entry.family} model of the "
                    "registry, without a draft of its own"
                )
    return registry
