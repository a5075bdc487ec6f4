"""``/describe``: an image in, four Midjourney-style prompts out.

The captioner is a CLIP model ranking phrases, as clip-interrogator does, rather than a generative captioner (BLIP,
Florence-2): every word it returns comes from the phrase lists below, so each prompt is safe to echo, always parses
with the command language, and never carries a stray token or an injected parameter; ranking is deterministic (the
🔄 button of Midjourney's describe re-ranks with the next-best phrases: ``offset``); and one CLIP checkpoint is the
only download (the ViT-L/14 that SD 1.5's text encoder comes from). The cost is vocabulary: the subject is the best
of a fixed list, where a generative captioner would name what it sees.

``builtin:tiny-clip`` is a CLIPModel at a tiny config with seeded random weights and the byte-level tokenizer of the
tiny diffusion models, saved with ``save_pretrained`` and loaded back through ``from_pretrained``: it ranks at random.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from impasto.engine.errors import InvalidInput
from impasto.engine.loading import _quiet_loading
from impasto.engine.registry import TINY_DESCRIBER

_TINY_VERSION = 1
_TINY_SEED = 20240603

SUBJECTS = (
    "a portrait of a woman",
    "a portrait of a man",
    "an old man with a beard",
    "a child playing",
    "a group of people",
    "a cat",
    "a dog",
    "a horse",
    "a bird in flight",
    "a dragon",
    "a robot",
    "a knight in armor",
    "a mountain landscape",
    "a forest path",
    "a beach at sunset",
    "an ocean with waves",
    "a lighthouse on a cliff",
    "a city street at night",
    "a futuristic city skyline",
    "a small village",
    "a castle on a hill",
    "a cozy interior room",
    "a kitchen table with food",
    "a bowl of fruit",
    "a vase of flowers",
    "a field of flowers",
    "a sports car",
    "a spaceship",
    "a planet in space",
    "a waterfall",
    "a desert with dunes",
    "a snowy mountain",
    "a river through a valley",
    "a bridge over water",
    "an abstract pattern",
    "a geometric shape",
    "a logo design",
    "a fantasy creature",
    "a tree alone in a field",
    "a sailing ship",
)
MEDIUMS = (
    "digital painting",
    "oil painting",
    "watercolor",
    "pencil sketch",
    "charcoal drawing",
    "photograph",
    "35mm film photo",
    "3d render",
    "vector illustration",
    "anime illustration",
    "comic book art",
    "pixel art",
    "ink drawing",
    "concept art",
    "low poly art",
)
STYLES = (
    "impressionism",
    "art nouveau",
    "cyberpunk",
    "surrealism",
    "minimalism",
    "baroque",
    "ukiyo-e",
    "pop art",
    "photorealism",
    "studio ghibli style",
    "synthwave",
    "fantasy art",
    "gothic",
    "bauhaus",
    "steampunk",
)
LIGHTING = (
    "golden hour",
    "soft light",
    "dramatic lighting",
    "neon lights",
    "volumetric light",
    "overcast",
    "moonlight",
    "backlit",
    "studio lighting",
    "candlelight",
)
FLAVORS = (
    "highly detailed",
    "muted colors",
    "vibrant colors",
    "pastel colors",
    "monochrome",
    "high contrast",
    "wide angle",
    "close up",
    "symmetrical composition",
    "bokeh",
    "intricate patterns",
    "moody atmosphere",
    "whimsical",
    "epic scale",
    "serene",
    "trending on artstation",
)
_BANKS = {"subject": SUBJECTS, "medium": MEDIUMS, "style": STYLES, "lighting": LIGHTING, "flavor": FLAVORS}
#: Midjourney's describe ends each prompt with the image's aspect ratio, rounded to a common one.
_RATIOS = ((1, 1), (4, 3), (3, 4), (3, 2), (2, 3), (16, 9), (9, 16), (2, 1), (1, 2), (5, 4), (4, 5))


def aspect_of(width: int, height: int) -> str:
    """The common aspect ratio nearest to width:height, as ``--ar`` writes it."""
    w, h = min(_RATIOS, key=lambda r: abs(r[0] / r[1] - width / height))
    return f"{w}:{h}"


@dataclass
class Describer:
    """A CLIP model with its processor and tokenizer, and the phrase embeddings computed once."""

    source: str
    model: Any
    processor: Any
    tokenizer: Any
    device: torch.device
    _phrases: dict[str, torch.Tensor] | None = None

    @torch.inference_mode()
    def describe(self, image: Image.Image, *, offset: int = 0) -> list[str]:
        """Four prompts, best first. ``offset`` > 0 starts lower in each ranking (Midjourney's 🔄 on describe)."""
        banks = self._phrase_embeddings()
        pixels = self.processor(images=image.convert("RGB"), return_tensors="pt")["pixel_values"].to(self.device)
        features = self.model.get_image_features(pixel_values=pixels)
        embedding = torch.nn.functional.normalize(_tensor(features), dim=-1)[0]
        ranked = {name: (emb @ embedding).argsort(descending=True).tolist() for name, emb in banks.items()}

        def pick(bank: str, index: int) -> str:
            order = ranked[bank]
            return str(_BANKS[bank][order[(offset * 4 + index) % len(order)]])

        ar = aspect_of(image.width, image.height)
        prompts = []
        for i in range(4):
            words = [pick("subject", i), pick("medium", i % 2), pick("style", i), pick("lighting", i // 2)]
            words += [pick("flavor", 2 * i), pick("flavor", 2 * i + 1)]
            prompts.append(f"{', '.join(words)} --ar {ar}")
        return prompts

    def _phrase_embeddings(self) -> dict[str, torch.Tensor]:
        if self._phrases is None:
            self._phrases = {}
            for name, phrases in _BANKS.items():
                tokens = self.tokenizer(list(phrases), padding=True, truncation=True, return_tensors="pt")
                features = self.model.get_text_features(
                    input_ids=tokens["input_ids"].to(self.device),
                    attention_mask=tokens["attention_mask"].to(self.device),
                )
                self._phrases[name] = torch.nn.functional.normalize(_tensor(features), dim=-1)
        return self._phrases


def _tensor(features: Any) -> torch.Tensor:
    """transformers returns a tensor, or (newer versions) an output object holding the pooled projection."""
    if isinstance(features, torch.Tensor):
        return features
    for name in ("image_embeds", "text_embeds", "pooler_output"):
        value = getattr(features, name, None)
        if isinstance(value, torch.Tensor):
            return value
    raise InvalidInput("the captioner returned no embedding")


def load_describer(source: str, cache_dir: Path, device: torch.device) -> Describer:
    """A CLIP checkpoint (a Hugging Face id or a local folder, safetensors only), or ``builtin:tiny-clip``."""
    from transformers import CLIPImageProcessor, CLIPModel, CLIPTokenizer

    folder = str(ensure_tiny_clip(cache_dir)) if source == TINY_DESCRIBER else source
    try:
        with _quiet_loading():
            model: Any = CLIPModel.from_pretrained(folder, use_safetensors=True)
            processor = CLIPImageProcessor.from_pretrained(folder)
            tokenizer = CLIPTokenizer.from_pretrained(folder)
        model.to(device).eval()
    except OSError as exc:
        raise InvalidInput(f"captioner {source}: cannot load it: {exc}") from exc
    return Describer(source, model, processor, tokenizer, device)


def ensure_tiny_clip(cache_dir: Path) -> Path:
    """The tiny CLIP folder, built and saved on first use."""
    folder = cache_dir / "tiny-clip"
    marker = folder / "impasto-tiny.json"
    if marker.exists() and json.loads(marker.read_text()).get("version") == _TINY_VERSION:
        return folder
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    from impasto.engine.tiny import _text_config, _tokenizer

    torch.manual_seed(_TINY_SEED)
    vision = {
        "hidden_size": 32,
        "intermediate_size": 37,
        "num_attention_heads": 4,
        "num_hidden_layers": 2,
        "image_size": 32,
        "patch_size": 8,
        "projection_dim": 32,
    }
    config = CLIPConfig(text_config=_text_config(32, 32).to_dict(), vision_config=vision, projection_dim=32)
    tmp = cache_dir / ".tiny-clip.building"
    with _quiet_loading():
        CLIPModel(config).save_pretrained(tmp, safe_serialization=True)
    _tokenizer().save_pretrained(tmp)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(tmp)
    (tmp / "impasto-tiny.json").write_text(json.dumps({"version": _TINY_VERSION, "seed": _TINY_SEED}))
    if folder.exists():
        import shutil

        shutil.rmtree(folder)
    tmp.rename(folder)
    return folder
