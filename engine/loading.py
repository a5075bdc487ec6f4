"""Registry entry → a resident diffusers pipeline, with an LRU of loaded models inside a memory budget.

Sources: ``builtin:tiny-*`` (built once under the cache dir, then loaded like any folder), a local diffusers folder,
a single ``.safetensors`` file (``from_single_file``), or a Hugging Face id (downloaded once with huggingface_hub's
progress bar). Pickle checkpoints are refused before anything is read: ``use_safetensors=True`` everywhere.

The budget of resident models defaults to the device's memory (``default_memory_budget``): a GPU's total memory, or
the machine's RAM on the CPU, less a margin for rendering; the operator overrides it (``IMPASTO_MODEL_CACHE_BYTES``).
One model is always resident, however large.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from impasto.engine.conditioning import PromptEncoder
from impasto.engine.errors import InvalidInput, UnknownModel, UnsafeCheckpoint
from impasto.engine.references import References, attach
from impasto.engine.registry import BUILTIN_PREFIX, ModelEntry, Registry, RegistryError
from impasto.engine.tiny import ensure_tiny_model

log = logging.getLogger("impasto.engine")

PICKLE_SUFFIXES = (".ckpt", ".bin", ".pt", ".pth", ".pkl")
GIB = 1024**3
#: What a render needs beside the resident weights: a GPU keeps max(8 GiB, a fifth) free (SDXL's batch-4 decode with
#: VAE slicing peaks at about 8 GB over its weights); the CPU max(4 GiB, a quarter) of the RAM for everything else.
CUDA_MARGIN = (8 * GIB, 0.20)
CPU_MARGIN = (4 * GIB, 0.25)
_PIPELINES = {"sd15": "StableDiffusionPipeline", "sdxl": "StableDiffusionXLPipeline"}


@dataclass
class LoadedModel:
    """One model resident on the device: its txt2img pipeline and, on demand, img2img/inpaint views of it."""

    entry: ModelEntry
    pipe: Any
    size_bytes: int
    load_s: float
    encoder: PromptEncoder
    #: The registry's IP-Adapter, loaded and switched off between renders; None when the entry names none.
    references: References | None = None
    _views: dict[str, Any] = field(default_factory=dict)

    def view(self, task: str) -> Any:
        """``img2img`` or ``inpaint``: the same components (no copy), another pipeline class."""
        if task == "txt2img":
            return self.pipe
        if task not in self._views:
            import diffusers

            cls = diffusers.AutoPipelineForImage2Image if task == "img2img" else diffusers.AutoPipelineForInpainting
            view = cls.from_pipe(self.pipe)
            view.set_progress_bar_config(disable=True)
            self._views[task] = view
        return self._views[task]


def pipeline_bytes(pipe: Any) -> int:
    total = 0
    for component in pipe.components.values():
        if isinstance(component, torch.nn.Module):
            total += sum(p.numel() * p.element_size() for p in component.parameters())
    return total


def system_memory_bytes() -> int:
    """The machine's physical RAM."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def device_memory_bytes(device: torch.device) -> int:
    """A CUDA device's total memory; the machine's RAM for the CPU (and unified-memory devices)."""
    if device.type == "cuda":
        return int(torch.cuda.get_device_properties(device).total_memory)
    return system_memory_bytes()


def default_memory_budget(device: torch.device) -> int:
    """How many bytes of model weights to keep resident on ``device``: its memory less the rendering margin."""
    total = device_memory_bytes(device)
    floor, share = CUDA_MARGIN if device.type == "cuda" else CPU_MARGIN
    return max(0, total - max(floor, int(total * share)))


def check_source(source: str) -> None:
    """Refuse pickle checkpoints by name, before touching the file."""
    if source.lower().endswith(PICKLE_SUFFIXES):
        raise UnsafeCheckpoint(source)


def _load_pipeline(entry: ModelEntry, cache_dir: Path, dtype: torch.dtype) -> Any:
    import diffusers

    cls = getattr(diffusers, _PIPELINES[entry.family])
    source = entry.source
    check_source(source)
    if source.startswith(BUILTIN_PREFIX):
        source = str(ensure_tiny_model(entry.family, cache_dir))
    path = Path(source).expanduser()
    if path.suffix == ".safetensors":
        if not path.is_file():
            raise InvalidInput(f"model {entry.name}: {path} does not exist")
        if entry.config is None:  # diffusers fetches the matching configs from the Hub
            return cls.from_single_file(str(path), torch_dtype=dtype)
        config = Path(entry.config).expanduser()
        if not (config / "model_index.json").is_file():
            raise InvalidInput(f"model {entry.name}: config {config} is not a diffusers folder (no model_index.json)")
        with _quiet_loading():  # offline: configs and tokenizers from the local folder, weights from the file
            return cls.from_single_file(str(path), torch_dtype=dtype, config=str(config), local_files_only=True)
    if path.is_dir():
        pickles = [p for p in path.rglob("*") if p.suffix in PICKLE_SUFFIXES]
        if pickles and not any(path.rglob("*.safetensors")):
            raise UnsafeCheckpoint(str(pickles[0]))
    try:
        if not path.is_dir():  # a Hugging Face id: the download shows huggingface_hub's progress bars
            return cls.from_pretrained(source, torch_dtype=dtype, use_safetensors=True)
        with _quiet_loading():  # a local folder loads in a blink: no per-component progress bars
            return cls.from_pretrained(str(path), torch_dtype=dtype, use_safetensors=True)
    except OSError as exc:
        if "safetensors" in str(exc).lower():
            raise UnsafeCheckpoint(source) from exc
        raise InvalidInput(f"model {entry.name}: cannot load {source}: {exc}") from exc


def _tune(pipe: Any, device: torch.device) -> None:
    """Resident-model settings. On a GPU the VAE decodes a batch one image at a time: the batch-4 decode sets the
    peak memory (SDXL fp16: 21.7 GB → 15.4 GB with slicing, as measured for diffusers) at a negligible cost in time."""
    pipe.set_progress_bar_config(disable=True)
    if device.type == "cuda":
        pipe.vae.enable_slicing()


@contextlib.contextmanager
def _quiet_loading() -> Iterator[None]:
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    try:
        yield
    finally:
        diffusers_logging.enable_progress_bar()
        transformers_logging.enable_progress_bar()  # type: ignore[no-untyped-call]


def _set_scheduler(pipe: Any, entry: ModelEntry) -> None:
    """The registry's scheduler class and timestep spacing, over the model's own scheduler config."""
    if not entry.scheduler and not entry.timestep_spacing:
        return
    import diffusers

    cls = getattr(diffusers, entry.scheduler, None) if entry.scheduler else type(pipe.scheduler)
    if cls is None or not hasattr(cls, "from_config"):
        raise InvalidInput(f"model {entry.name}: unknown scheduler {entry.scheduler!r} (a diffusers class name)")
    overrides = {"timestep_spacing": entry.timestep_spacing} if entry.timestep_spacing else {}
    pipe.scheduler = cls.from_config(pipe.scheduler.config, **overrides)


def _fuse_lora(pipe: Any, entry: ModelEntry) -> None:
    """The registry's ``lora`` (an LCM / Lightning LoRA) merged into the weights for good: renders pay nothing for
    it, and a render's own ``<lora:…>`` tags load and unload on top of it as on any model."""
    if entry.lora is None:
        return
    path = Path(entry.lora).expanduser()
    if not path.is_file():
        raise InvalidInput(f"model {entry.name}: LoRA {path} does not exist")
    try:
        pipe.load_lora_weights(str(path.parent), weight_name=path.name, adapter_name="registry")
        pipe.fuse_lora(lora_scale=entry.lora_scale, adapter_names=["registry"])
        pipe.unload_lora_weights()  # the fused weights stay; the adapter layers go
    except (ImportError, ValueError) as exc:
        raise InvalidInput(f"model {entry.name}: cannot fuse LoRA {path}: {exc}") from exc


class ModelCache:
    """Keeps loaded models resident; loading one more evicts the least recently used past the budget."""

    def __init__(
        self,
        registry: Registry,
        *,
        device: torch.device,
        dtype: torch.dtype,
        cache_dir: Path,
        memory_budget_bytes: int | None = None,
    ) -> None:
        """``memory_budget_bytes``: None takes ``default_memory_budget(device)``."""
        self.registry = registry
        self.device = device
        self.dtype = dtype
        self.cache_dir = cache_dir
        if memory_budget_bytes is None:
            memory_budget_bytes = default_memory_budget(device)
            log.info(
                "model cache budget: %.1f GiB of %s's %.1f GiB (default; IMPASTO_MODEL_CACHE_BYTES sets it)",
                memory_budget_bytes / GIB,
                device,
                device_memory_bytes(device) / GIB,
            )
        else:
            log.info("model cache budget: %.1f GiB on %s (set by the operator)", memory_budget_bytes / GIB, device)
        self.memory_budget_bytes = memory_budget_bytes
        self._loaded: OrderedDict[str, LoadedModel] = OrderedDict()

    def entry(self, name: str) -> ModelEntry:
        try:
            return self.registry.get(name)
        except RegistryError:
            raise UnknownModel(name, self.registry.names()) from None

    @property
    def resident(self) -> list[str]:
        return list(self._loaded)

    def get(self, name: str) -> LoadedModel:
        entry = self.entry(name)
        if name in self._loaded:
            self._loaded.move_to_end(name)
            return self._loaded[name]
        started = time.perf_counter()
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        pipe = _load_pipeline(entry, self.cache_dir, self.dtype)
        _set_scheduler(pipe, entry)
        _fuse_lora(pipe, entry)
        # Loaded on (its modules counted and moved with the pipeline), then off until a render uses it.
        references = attach(pipe, entry.ip_adapter, entry.family, self.cache_dir) if entry.ip_adapter else None
        size = pipeline_bytes(pipe)
        self._evict_for(size)
        pipe.to(self.device)
        _tune(pipe, self.device)
        if references is not None:
            references.switch(pipe, False)
        encoder = PromptEncoder(pipe, entry.family)
        loaded = LoadedModel(entry, pipe, size, time.perf_counter() - started, encoder, references)
        self._loaded[name] = loaded
        return loaded

    def adopt(self, entry: ModelEntry, pipe: Any) -> LoadedModel:
        """Make an already-built pipeline resident under ``entry.name`` (the bench's random-weight architectures)."""
        size = pipeline_bytes(pipe)
        self._evict_for(size)
        pipe.to(self.device, self.dtype)
        _tune(pipe, self.device)
        loaded = LoadedModel(entry, pipe, size, 0.0, PromptEncoder(pipe, entry.family))
        self._loaded[entry.name] = loaded
        return loaded

    def evict(self, name: str) -> None:
        """Drop one resident model and give its memory back."""
        self._loaded.pop(name, None)
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def _evict_for(self, size: int) -> None:
        while self._loaded and sum(m.size_bytes for m in self._loaded.values()) + size > self.memory_budget_bytes:
            self._loaded.popitem(last=False)
            gc.collect()
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
