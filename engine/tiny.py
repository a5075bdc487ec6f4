"""The built-in tiny models: the real diffusers classes at a tiny config, seeded random weights.

They are saved once with ``save_pretrained`` to a folder under the cache dir and then loaded back through the same
``from_pretrained`` path as a real model, so tests exercise the real loading code. They paint noise.

The VAE keeps four blocks (downsampling ×8, like the real VAE) so that pixel sizes, latent sizes and the preview
projection behave as in production; its channels are tiny. The tokenizer is a byte-level CLIP BPE with no merges:
every character is a token, which needs no vocabulary download.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from impasto.engine.registry import Family

_SEED = 20240601
_MARKER = "impasto-tiny.json"
_VERSION = 3  # bump when the configs below change: cached folders of another version are rebuilt


def _byte_chars() -> list[str]:
    """GPT-2/CLIP byte→unicode table: every byte gets a printable stand-in character."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return [chr(c) for c in chars]


def _tokenizer() -> Any:
    from transformers import CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for suffix in ("", "</w>"):
        for ch in _byte_chars():
            vocab[ch + suffix] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)


def _text_config(hidden: int, projection: int) -> Any:
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
        hidden_size=hidden,
        intermediate_size=37,
        num_attention_heads=4,
        num_hidden_layers=2,
        vocab_size=514,
        max_position_embeddings=77,
        projection_dim=projection,
        layer_norm_eps=1e-5,
    )


def _vae() -> Any:
    import diffusers

    lib: Any = diffusers
    return lib.AutoencoderKL(
        block_out_channels=(8, 8, 16, 16),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=4,
        sample_size=256,
        force_upcast=False,  # fp32 weights anyway; the SDXL pipeline would otherwise cast it back and forth
    )


def _build(family: Family) -> Any:
    import diffusers
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(_SEED)
    lib: Any = diffusers
    scheduler = lib.EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", timestep_spacing="leading", steps_offset=1
    )
    if family == "sd15":
        unet = lib.UNet2DConditionModel(
            block_out_channels=(32, 64),
            layers_per_block=1,
            sample_size=32,
            in_channels=4,
            out_channels=4,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            cross_attention_dim=32,
            attention_head_dim=8,
            norm_num_groups=8,
        )
        return lib.StableDiffusionPipeline(
            vae=_vae(),
            text_encoder=CLIPTextModel(_text_config(32, 32)),
            tokenizer=_tokenizer(),
            unet=unet,
            scheduler=scheduler,
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
        )
    unet = lib.UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=1,
        sample_size=32,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        transformer_layers_per_block=(1, 1),
        projection_class_embeddings_input_dim=6 * 8 + 32,  # six size/crop numbers + the pooled text embedding
        cross_attention_dim=32 + 48,  # both text encoders' hidden states, concatenated
        norm_num_groups=8,
    )
    return lib.StableDiffusionXLPipeline(
        vae=_vae(),
        text_encoder=CLIPTextModel(_text_config(32, 32)),
        # Wider than the first, as in SDXL (768 / 1280): single-file loading tells the two apart by that width.
        text_encoder_2=CLIPTextModelWithProjection(_text_config(48, 32)),
        tokenizer=_tokenizer(),
        tokenizer_2=_tokenizer(),
        unet=unet,
        scheduler=scheduler,
    )


def ensure_tiny_model(family: Family, cache_dir: Path) -> Path:
    """The folder of the tiny model of ``family``, built and saved on first use (a second or two on a CPU)."""
    folder = cache_dir / f"tiny-{family}"
    marker = folder / _MARKER
    if marker.exists() and json.loads(marker.read_text()).get("version") == _VERSION:
        return folder
    pipe = _build(family)
    tmp = cache_dir / f".tiny-{family}.building"
    pipe.save_pretrained(tmp, safe_serialization=True)
    (tmp / _MARKER).write_text(json.dumps({"version": _VERSION, "family": family, "seed": _SEED}))
    if folder.exists():
        import shutil

        shutil.rmtree(folder)
    tmp.rename(folder)
    return folder
