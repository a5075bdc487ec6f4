"""Few-step models: the registry carries scheduler, steps, guidance (≤ 1 allowed) and timestep spacing; --draft
paints with the model's few-step variant when the registry names one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from engine_helpers import spec_for

from impasto.engine.engine import Engine, guidance_for
from impasto.engine.registry import Registry, RegistryError, load_registry


class _Calls:
    """The timestep and batch of every UNet call of a render."""

    def __init__(self, unet: torch.nn.Module) -> None:
        self.timesteps: list[float] = []
        self.batches: list[int] = []
        self._handle = unet.register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, module: Any, args: Any, kwargs: dict[str, Any]) -> None:
        self.timesteps.append(float(args[1]))
        self.batches.append(int(args[0].shape[0]))

    def close(self) -> None:
        self._handle.remove()


def test_guidance_at_or_below_one_is_kept_as_configured() -> None:
    assert guidance_for(0.0, 100) == 0.0
    assert guidance_for(1.0, 0) == 1.0
    assert guidance_for(1.0, 1000) == 1.0
    assert guidance_for(1.2, 1000) == 1.2  # low guidance models never get pushed up to the 1.5 floor
    assert guidance_for(7.0, 1000) == 3.5


def test_draft_paints_with_the_turbo_variant_at_its_own_schedule(engine: Engine) -> None:
    turbo = engine.models.get("tiny-sdxl-turbo")
    assert type(turbo.pipe.scheduler).__name__ == "EulerAncestralDiscreteScheduler"
    assert turbo.pipe.scheduler.config.timestep_spacing == "trailing"
    calls = _Calls(turbo.pipe.unet)
    try:
        result = engine.imagine(spec_for("tiny-sdxl", draft=True, steps=None))
    finally:
        calls.close()
    assert (result.model, result.steps, result.guidance) == ("tiny-sdxl-turbo", 1, 0.0)
    assert calls.timesteps == [999.0]  # "trailing": the single step starts from pure noise
    assert calls.batches == [4]  # guidance off: no unconditional half
    assert len(result.images) == 4


def test_draft_without_a_variant_halves_the_steps_and_keeps_guidance(engine: Engine) -> None:
    result = engine.imagine(spec_for("tiny-sd15", draft=True, steps=None))
    assert (result.model, result.steps) == ("tiny-sd15", 2)
    assert result.guidance > 1.5


def test_lcm_entry_runs_its_scheduler_and_steps_without_guidance(engine: Engine) -> None:
    lcm = engine.models.get("tiny-sd15-lcm")
    assert type(lcm.pipe.scheduler).__name__ == "LCMScheduler"
    calls = _Calls(lcm.pipe.unet)
    try:
        result = engine.imagine(spec_for("tiny-sd15-lcm", steps=None, batch_size=1))
    finally:
        calls.close()
    assert (result.steps, result.guidance) == (4, 1.0)
    assert calls.batches == [1, 1, 1, 1]


def test_planned_steps_match_what_the_engine_runs(engine: Engine, registry: Registry) -> None:
    for name, draft in (("tiny-sdxl", True), ("tiny-sdxl", False), ("tiny-sd15", True)):
        ran = engine.imagine(spec_for(name, draft=draft, steps=None, batch_size=1)).steps
        assert registry.planned_steps(name, 1.0, draft) == ran
    assert registry.planned_steps("tiny-sdxl", 1.0, True) < registry.planned_steps("tiny-sdxl", 1.0, False)


def _registry(tmp_path: Path, body: str) -> Registry:
    path = tmp_path / "models.toml"
    path.write_text('default = "base"\n' + body, encoding="utf-8")
    return load_registry(path)


def test_registry_reads_few_step_fields(tmp_path: Path) -> None:
    registry = _registry(
        tmp_path,
        """
[models.base]
family = "sdxl"
source = "stabilityai/stable-diffusion-xl-base-1.0"
draft = "lightning"

[models.lightning]
family = "sdxl"
source = "/models/sdxl-lightning-4step.safetensors"
steps = 4
guidance = 0
scheduler = "EulerDiscreteScheduler"
timestep_spacing = "trailing"
""",
    )
    lightning = registry.get("lightning")
    assert (lightning.steps, lightning.guidance, lightning.timestep_spacing) == (4, 0.0, "trailing")
    assert registry.for_render("base", True) == (lightning, False)
    assert registry.for_render("base", False) == (registry.get("base"), False)
    assert registry.planned_steps("base", 1.0, True) == 4


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('timestep_spacing = "sideways"', "timestep_spacing must be one of"),
        ("guidance = -1", "guidance must be 0 or more"),
        ('draft = "nowhere"', "draft 'nowhere' must be another sdxl model"),
        ('draft = "tiny-sd15"', "must be another sdxl model"),
        ('draft = "base"', "draft must name another model"),
    ],
)
def test_registry_refuses_bad_few_step_fields(tmp_path: Path, extra: str, message: str) -> None:
    body = f'[models.base]\nfamily = "sdxl"\nsource = "org/name"\n{extra}\n'
    with pytest.raises(RegistryError, match=message):
        _registry(tmp_path, body)


def test_a_registry_lora_is_fused_at_load(engine: Engine, registry: Registry, tmp_path: Path) -> None:
    """An LCM-LoRA kind of entry: the base model plus a LoRA fused into its weights, with the LCM schedule."""
    pytest.importorskip("peft", reason="diffusers loads LoRAs through peft")
    import dataclasses

    from safetensors.torch import save_file

    base = engine.models.get("tiny-sd15").pipe.unet
    generator = torch.Generator().manual_seed(0)
    weights = {}
    for name, module in base.named_modules():
        if name.endswith("attn1.to_q") and isinstance(module, torch.nn.Linear):
            weights[f"unet.{name}.lora_A.weight"] = torch.randn(4, module.in_features, generator=generator)
            weights[f"unet.{name}.lora_B.weight"] = torch.randn(module.out_features, 4, generator=generator)
    save_file(weights, str(tmp_path / "lcm-lora.safetensors"))
    entry = dataclasses.replace(
        registry.get("tiny-sd15"),
        name="tiny-sd15-lcm-lora",
        lora=str(tmp_path / "lcm-lora.safetensors"),
        scheduler="LCMScheduler",
        steps=4,
        guidance=1.0,
    )
    fused_engine = Engine(
        Registry({**registry.models, entry.name: entry}, entry.name), device="cpu", cache_dir=engine.models.cache_dir
    )
    fused = fused_engine.models.get(entry.name).pipe.unet
    changed = {name for name, tensor in fused.state_dict().items() if not torch.equal(tensor, base.state_dict()[name])}
    assert changed
    assert all("attn1.to_q" in name for name in changed)
    assert set(fused.state_dict()) == set(base.state_dict())  # fused: no adapter layers left behind
    result = fused_engine.imagine(spec_for(entry.name, steps=None, batch_size=1))
    assert (result.steps, result.guidance) == (4, 1.0)


def test_registry_reads_the_fused_lora(tmp_path: Path) -> None:
    registry = _registry(
        tmp_path,
        '[models.base]\nfamily = "sd15"\nsource = "org/sd15"\nlora = "/m/lcm-lora-sdv1-5.safetensors"\n'
        'lora_scale = 0.8\nscheduler = "LCMScheduler"\nsteps = 4\nguidance = 1\n',
    )
    assert (registry.get("base").lora, registry.get("base").lora_scale) == ("/m/lcm-lora-sdv1-5.safetensors", 0.8)
    with pytest.raises(RegistryError, match="lora must be a"):
        _registry(tmp_path, '[models.base]\nfamily = "sd15"\nsource = "org/sd15"\nlora = "/m/x.ckpt"\n')
