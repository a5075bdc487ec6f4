"""The built-in tiny translator: a real MarianMT model (the class of ``opus-mt-zh-en``) at a tiny size, built in code.

Like the tiny diffusion models it is built once, saved with ``save_pretrained`` under the cache dir and then loaded
through the same ``AutoTokenizer`` / ``AutoModelForSeq2SeqLM`` path as a downloaded translator, so tests exercise
the real loading code with no download.

The tokenizer is Marian's own (``MarianTokenizer``: two SentencePiece models and a shared vocabulary), with the
SentencePiece models trained here on the phrase book below: a character model for Chinese, a word model for English.

Random weights would "translate" into random English words, which makes tests that read the result weak and the
"read as" line of an offline demo meaningless. So the seeded random model is then fitted to ``PHRASE_BOOK`` for a
few dozen steps (seconds on a CPU): it knows those phrases and nothing else — text outside the book comes out as
some English from the book, never as Chinese.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import torch

_SEED = 20240616
_MARKER = "impasto-tiny-translator.json"
_VERSION = 1  # bump when the phrase book or the config changes: cached folders of another version are rebuilt
_MAX_STEPS = 200
_TARGET_LOSS = 0.02

#: What the tiny translator knows. The issue's own examples, and words the tests and README use.
PHRASE_BOOK: tuple[tuple[str, str], ...] = (
    ("一只在月光下睡觉的橘猫", "a ginger cat sleeping in the moonlight"),
    ("红色的帽子", "red hat"),
    ("蓝色的帽子", "blue hat"),
    ("一只猫", "a cat"),
    ("一只狗", "a dog"),
    ("人物", "people"),
    ("文字", "text"),
    ("水印", "watermark"),
    ("灯塔", "lighthouse"),
    ("黄昏", "dusk"),
    ("雾", "fog"),
    ("月光", "moonlight"),
    ("城市夜景", "city at night"),
    ("山水画", "landscape painting"),
    ("水彩", "watercolor"),
    ("油画", "oil painting"),
    ("樱花", "cherry blossoms"),
    ("森林", "forest"),
    ("海边的灯塔", "a lighthouse by the sea"),
    ("红色", "red"),
    ("蓝色", "blue"),
    ("绿色", "green"),
    ("女孩", "girl"),
    ("龙", "dragon"),
    ("古老的城堡", "an ancient castle"),
    ("雪山", "snowy mountains"),
    ("星空", "starry sky"),
    ("赛博朋克", "cyberpunk"),
    ("模糊", "blurry"),
    ("猫", "cat"),
    ("狗", "dog"),
    ("帽子", "hat"),
)


def _sentencepiece(texts: list[str], model_type: str) -> bytes:
    import sentencepiece

    buf = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(texts),
        model_writer=buf,
        model_type=model_type,
        vocab_size=400,
        hard_vocab_limit=False,  # the phrase book has fewer pieces than that: take what there is
        character_coverage=1.0,
        unk_id=0,
        bos_id=-1,
        eos_id=-1,
        pad_id=-1,
        minloglevel=2,
    )
    return buf.getvalue()


def _vocabulary(folder: Path) -> dict[str, int]:
    """Marian's layout: ``</s>`` 0, ``<unk>`` 1, the pieces of both sides, ``<pad>`` last (decoding starts with it)."""
    import sentencepiece

    vocab = {"</s>": 0, "<unk>": 1}
    for name in ("source.spm", "target.spm"):
        processor = sentencepiece.SentencePieceProcessor(model_file=str(folder / name))
        for i in range(processor.get_piece_size()):
            piece = processor.id_to_piece(i)
            if piece not in vocab and piece != "<unk>":
                vocab[piece] = len(vocab)
    vocab["<pad>"] = len(vocab)
    return vocab


def _build(folder: Path) -> None:
    from transformers import MarianConfig, MarianMTModel, MarianTokenizer

    folder.mkdir(parents=True)
    (folder / "source.spm").write_bytes(_sentencepiece([zh for zh, _ in PHRASE_BOOK], "char"))
    (folder / "target.spm").write_bytes(_sentencepiece([en for _, en in PHRASE_BOOK], "word"))
    vocab = _vocabulary(folder)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    tokenizer = MarianTokenizer(
        source_spm=str(folder / "source.spm"),
        target_spm=str(folder / "target.spm"),
        vocab=str(folder / "vocab.json"),
        source_lang="zh",
        target_lang="en",
    )
    pad = vocab["<pad>"]
    config = MarianConfig(
        vocab_size=len(vocab),
        d_model=32,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_position_embeddings=64,
        pad_token_id=pad,
        eos_token_id=0,
        decoder_start_token_id=pad,
        forced_eos_token_id=0,
        dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
    )
    torch.manual_seed(_SEED)
    model = MarianMTModel(config)
    _fit(model, tokenizer, pad)
    model.generation_config.num_beams = 1
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)


def _fit(model: torch.nn.Module, tokenizer: object, pad: int) -> None:
    """Fit the phrase book (teacher forcing, full batch, Adam) until the loss is low: about 70 steps."""
    batch = tokenizer(  # type: ignore[operator]
        [zh for zh, _ in PHRASE_BOOK], text_target=[en for _, en in PHRASE_BOOK], padding=True, return_tensors="pt"
    )
    labels = batch["labels"].masked_fill(batch["labels"] == pad, -100)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    threads = torch.get_num_threads()
    # One thread: for a model this small, threads only fight over the cores (ten times slower on a busy 2-core
    # machine), and one thread sums in one order, so every machine fits the same weights.
    torch.set_num_threads(1)
    model.train()
    try:
        with torch.enable_grad():
            for _ in range(_MAX_STEPS):
                loss = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=labels).loss
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                if loss.item() < _TARGET_LOSS:
                    break
    finally:
        torch.set_num_threads(threads)
        model.eval()


def ensure_tiny_translator(cache_dir: Path) -> Path:
    """The folder of the tiny translator, built and saved on first use (seconds on a CPU)."""
    folder = cache_dir / "tiny-translator-zh-en"
    marker = folder / _MARKER
    if marker.exists() and json.loads(marker.read_text()).get("version") == _VERSION:
        return folder
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cache_dir / ".tiny-translator-zh-en.building"
    if tmp.exists():
        shutil.rmtree(tmp)
    _build(tmp)
    (tmp / _MARKER).write_text(json.dumps({"version": _VERSION, "seed": _SEED, "phrases": len(PHRASE_BOOK)}))
    if folder.exists():
        shutil.rmtree(folder)
    tmp.rename(folder)
    return folder
