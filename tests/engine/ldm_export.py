"""Test helper: a diffusers SD 1.5 / SDXL folder → one original-layout (CompVis/SGM, A1111) ``.safetensors`` file.

Real single-file checkpoints use the original LDM key names (``model.diffusion_model.input_blocks.1.0…``,
``first_stage_model.…``, ``cond_stage_model.transformer.…``); diffusers converts them back when loading. Writing the
tiny model in that layout lets the tests load it through the same ``from_single_file`` path as a downloaded
checkpoint. The key mapping follows the structure of the LDM UNet and VAE (levels × layers per block, with the
attention layers and resamplers at fixed positions), generalised to the tiny configs.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

_RESNET = (
    ("norm1", "in_layers.0"),
    ("conv1", "in_layers.2"),
    ("norm2", "out_layers.0"),
    ("conv2", "out_layers.3"),
    ("time_emb_proj", "emb_layers.1"),
    ("conv_shortcut", "skip_connection"),
)


def _unet_prefixes(config: dict[str, object]) -> list[tuple[str, str]]:
    """(diffusers prefix, LDM prefix) pairs for the UNet blocks."""
    down_types = list(config["down_block_types"])  # type: ignore[call-overload]
    up_types = list(config["up_block_types"])  # type: ignore[call-overload]
    layers = int(config["layers_per_block"])  # type: ignore[call-overload]
    levels = len(down_types)
    pairs: list[tuple[str, str]] = []
    for i in range(levels):
        for j in range(layers):
            pairs.append((f"down_blocks.{i}.resnets.{j}.", f"input_blocks.{(layers + 1) * i + j + 1}.0."))
            if "CrossAttn" in down_types[i]:
                pairs.append((f"down_blocks.{i}.attentions.{j}.", f"input_blocks.{(layers + 1) * i + j + 1}.1."))
        if i < levels - 1:
            pairs.append((f"down_blocks.{i}.downsamplers.0.conv.", f"input_blocks.{(layers + 1) * (i + 1)}.0.op."))
        for j in range(layers + 1):
            pairs.append((f"up_blocks.{i}.resnets.{j}.", f"output_blocks.{(layers + 1) * i + j}.0."))
            if "CrossAttn" in up_types[i]:
                pairs.append((f"up_blocks.{i}.attentions.{j}.", f"output_blocks.{(layers + 1) * i + j}.1."))
        if i < levels - 1:
            position = 2 if "CrossAttn" in up_types[i] else 1
            pairs.append((f"up_blocks.{i}.upsamplers.0.", f"output_blocks.{(layers + 1) * i + layers}.{position}."))
    pairs.append(("mid_block.attentions.0.", "middle_block.1."))
    pairs += [(f"mid_block.resnets.{j}.", f"middle_block.{2 * j}.") for j in range(2)]
    return pairs


def _unet_key(key: str, prefixes: list[tuple[str, str]]) -> str:
    fixed = {
        "add_embedding.linear_1.": "label_emb.0.0.",  # SDXL's size/crop + pooled text embedding
        "add_embedding.linear_2.": "label_emb.0.2.",
        "time_embedding.linear_1.": "time_embed.0.",
        "time_embedding.linear_2.": "time_embed.2.",
        "conv_in.": "input_blocks.0.0.",
        "conv_norm_out.": "out.0.",
        "conv_out.": "out.2.",
    }
    for hf, sd in fixed.items():
        if key.startswith(hf):
            return sd + key[len(hf) :]
    for hf, sd in prefixes:
        if key.startswith(hf):
            rest = key[len(hf) :]
            if "resnets" in hf:
                for hf_part, sd_part in _RESNET:
                    if rest.startswith(hf_part + "."):
                        rest = sd_part + rest[len(hf_part) :]
                        break
            return sd + rest
    raise KeyError(f"no LDM name for UNet key {key}")


def _vae_key(key: str, config: dict[str, object]) -> str:
    levels = len(config["down_block_types"])  # type: ignore[arg-type]
    key = key.replace("conv_shortcut.", "nin_shortcut.").replace("conv_norm_out.", "norm_out.")
    key = key.replace("mid_block.attentions.0.", "mid.attn_1.")
    for old, new in (
        ("group_norm.", "norm."),
        ("to_q.", "q."),
        ("to_k.", "k."),
        ("to_v.", "v."),
        ("to_out.0.", "proj_out."),
    ):
        if "mid.attn_1." in key:
            key = key.replace(old, new)
    for i in range(2):
        key = key.replace(f"mid_block.resnets.{i}.", f"mid.block_{i + 1}.")
    for i in range(levels):
        key = key.replace(f"encoder.down_blocks.{i}.resnets.", f"encoder.down.{i}.block.")
        key = key.replace(f"encoder.down_blocks.{i}.downsamplers.0.", f"encoder.down.{i}.downsample.")
        key = key.replace(f"decoder.up_blocks.{i}.resnets.", f"decoder.up.{levels - 1 - i}.block.")
        key = key.replace(f"decoder.up_blocks.{i}.upsamplers.0.", f"decoder.up.{levels - 1 - i}.upsample.")
    return key


def _open_clip(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """A transformers CLIPTextModelWithProjection → OpenCLIP names (SDXL's second text encoder): fused q/k/v."""
    out: dict[str, torch.Tensor] = {}
    renames = (("layer_norm1", "ln_1"), ("layer_norm2", "ln_2"), (".fc1.", ".c_fc."), (".fc2.", ".c_proj."))
    fixed = {
        "text_model.embeddings.position_embedding.weight": "positional_embedding",
        "text_model.embeddings.token_embedding.weight": "token_embedding.weight",
        "text_model.final_layer_norm.weight": "ln_final.weight",
        "text_model.final_layer_norm.bias": "ln_final.bias",
    }
    for key, value in state.items():
        if key in fixed:
            out[prefix + fixed[key]] = value
        elif key == "text_projection.weight":
            out[prefix + "text_projection"] = value.T.contiguous()
        elif ".self_attn.q_proj." in key:
            kind = key.rsplit(".", 1)[1]  # weight / bias
            stem = key.split(".self_attn.")[0].replace("text_model.encoder.layers.", "transformer.resblocks.")
            parts = [state[key.replace("q_proj", p)] for p in ("q_proj", "k_proj", "v_proj")]
            out[f"{prefix}{stem}.attn.in_proj_{kind}"] = torch.cat(parts)
        elif ".self_attn.k_proj." in key or ".self_attn.v_proj." in key:
            continue
        else:
            name = key.replace("text_model.encoder.layers.", "transformer.resblocks.").replace(".self_attn", ".attn")
            for old, new in renames:
                name = name.replace(old, new)
            out[prefix + name] = value
    return out


def export_sdxl(folder: Path, out: Path) -> Path:
    """Write ``folder`` (a diffusers SDXL pipeline) as one original-layout ``.safetensors`` file."""
    state = _unet_and_vae(folder)
    for key, value in load_file(str(folder / "text_encoder" / "model.safetensors")).items():
        name = key if key.startswith("text_model.") else "text_model." + key
        state["conditioner.embedders.0.transformer." + name] = value
    second = load_file(str(folder / "text_encoder_2" / "model.safetensors"))
    state.update(_open_clip(second, "conditioner.embedders.1.model."))
    save_file({k: v.contiguous() for k, v in state.items()}, str(out))
    return out


def export_sd15(folder: Path, out: Path) -> Path:
    """Write ``folder`` (a diffusers SD 1.5 pipeline) as one original-layout ``.safetensors`` file."""
    state = _unet_and_vae(folder)
    for key, value in load_file(str(folder / "text_encoder" / "model.safetensors")).items():
        name = key if key.startswith("text_model.") else "text_model." + key
        state["cond_stage_model.transformer." + name] = value
    save_file({k: v.contiguous() for k, v in state.items()}, str(out))
    return out


def _unet_and_vae(folder: Path) -> dict[str, torch.Tensor]:
    unet_config = json.loads((folder / "unet" / "config.json").read_text())
    vae_config = json.loads((folder / "vae" / "config.json").read_text())
    prefixes = _unet_prefixes(unet_config)
    state: dict[str, torch.Tensor] = {}
    for key, value in load_file(str(folder / "unet" / "diffusion_pytorch_model.safetensors")).items():
        state["model.diffusion_model." + _unet_key(key, prefixes)] = value
    for key, value in load_file(str(folder / "vae" / "diffusion_pytorch_model.safetensors")).items():
        new = _vae_key(key, vae_config)
        if "mid.attn_1." in new and new.endswith(("q.weight", "k.weight", "v.weight", "proj_out.weight")):
            value = value.reshape(*value.shape, 1, 1)  # the LDM VAE's attention uses 1×1 convolutions
        state["first_stage_model." + new] = value
    return state
