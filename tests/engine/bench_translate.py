"""Translation time per prompt with a translator on the CPU (a benchmark that prints numbers; pytest does not collect
it). Default: the built-in tiny translator, built in a scratch folder. ``--source`` times another one (a Hugging Face
id that is already in the local cache, or a folder), e.g. Helsinki-NLP/opus-mt-zh-en.

``--opus-shape`` times the architecture of opus-mt-zh-en (MarianMT, 6+6 layers, d_model 512, 65001 tokens: 77 M
parameters) with random weights instead, generating a fixed number of tokens (speed does not depend on the values;
the length is fixed because random weights would not stop by themselves), greedy and with opus-mt's 4 beams.

Run: .venv/bin/python tests/engine/bench_translate.py [--source ID_OR_FOLDER | --opus-shape] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from impasto.engine.registry import TINY_TRANSLATOR, ModelEntry, TranslatorEntry
from impasto.engine.translate import Translation

RUNS = 20
PROMPTS = {
    "one sentence": (("一只在月光下睡觉的橘猫", 1.0),),
    "weights, emphasis, --no (5 runs)": (
        ("(红色的帽子:1.3), 一只猫::2", 1.0),
        ("海边的灯塔, 黄昏, cinematic lighting", 1.0),
        ("人物", -0.5),
        ("文字", -0.5),
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--source", default=TINY_TRANSLATOR)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--opus-shape", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.opus_shape:
        opus_shape()
        return
    entry = ModelEntry("bench", "sdxl", "bench", 1024, 30, 7.0, translator=TranslatorEntry(args.source))
    with tempfile.TemporaryDirectory() as tmp:
        translation = Translation(cache_dir=Path(tmp), device="cpu")
        started = time.perf_counter()
        translator = translation.translator(TranslatorEntry(args.source))
        load_s = time.perf_counter() - started
        params = sum(p.numel() for p in translator.model.parameters())
        print(f"translator {args.source}: {params / 1e6:.3f} M parameters, built/loaded in {load_s:.2f} s")
        print(f"torch threads: {torch.get_num_threads()}, runs per figure: {RUNS}")
        for name, prompts in PROMPTS.items():
            cold = []
            for _ in range(RUNS):
                translator._cache.clear()  # every run translates from scratch
                _, seconds = translation.read_prompts(prompts, entry)
                cold.append(seconds)
            warm = [translation.read_prompts(prompts, entry)[1] for _ in range(RUNS)]
            reading, _ = translation.read_prompts(prompts, entry)
            print(
                f"{name}: uncached median {statistics.median(cold) * 1000:.1f} ms (max {max(cold) * 1000:.1f}), "
                f"cached median {statistics.median(warm) * 1000:.3f} ms -> {reading.prompts}"
            )


def opus_shape(input_tokens: int = 14, output_tokens: int = 12) -> None:
    """One prompt of ``input_tokens`` Chinese pieces → ``output_tokens`` English ones, at opus-mt-zh-en's size."""
    from transformers import MarianConfig, MarianMTModel

    torch.manual_seed(0)
    config = MarianConfig(
        vocab_size=65001, d_model=512, encoder_layers=6, decoder_layers=6, encoder_attention_heads=8,
        decoder_attention_heads=8, encoder_ffn_dim=2048, decoder_ffn_dim=2048, max_position_embeddings=512,
        pad_token_id=65000, eos_token_id=0, decoder_start_token_id=65000,
    )  # fmt: skip
    model = MarianMTModel(config).eval()
    params = sum(p.numel() for p in model.parameters())
    print(f"opus-mt-zh-en shape, random weights: {params / 1e6:.1f} M parameters ({params * 4 / 2**20:.0f} MiB fp32)")
    print(f"torch threads: {torch.get_num_threads()}, {input_tokens} tokens in, {output_tokens} out, {RUNS} runs")
    ids = torch.randint(1, 64000, (1, input_tokens))
    for beams in (1, 4):
        times = []
        with torch.no_grad():
            for _ in range(RUNS):
                started = time.perf_counter()
                model.generate(
                    input_ids=ids,
                    num_beams=beams,
                    min_new_tokens=output_tokens,
                    max_new_tokens=output_tokens,
                )
                times.append(time.perf_counter() - started)
        print(
            f"{beams} beam(s): median {statistics.median(times) * 1000:.0f} ms per prompt (max {max(times) * 1000:.0f})"
        )


if __name__ == "__main__":
    main()
