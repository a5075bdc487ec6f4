"""Parse time of 6000-character prompts (a benchmark that prints numbers; pytest does not collect it).

Run: .venv/bin/python tests/language/bench_parse.py
"""

from __future__ import annotations

import statistics
import time

from impasto.bots.language.parser import parse_imagine
from impasto.engine.registry import DEFAULT_REGISTRY_PATH, load_registry

RUNS = 100


def _pad(head: str, tail: str, length: int = 6000) -> str:
    body = head * (length // len(head) + 1)
    return body[: length - len(tail)] + tail


PROMPTS = {
    "realistic (weights, emphasis, lora, --no, params)": _pad(
        "a lighthouse on a cliff at (dusk:1.2), [fog], <lora:ink:0.5> stormy sea::2 ",
        " --ar 16:9 --no people, boats --s 250 --c 10 --seed 42 --style raw",
    ),
    "permutations (4 jobs)": _pad("a red bird in the jungle, ", " {red, green} bird in the {jungle, desert} --ar 3:2"),
    "plain words": _pad("word ", ""),
    "2999 nested brackets": "(" * 2999 + "a" + ")" * 2999 + " " * 1,
}


def main() -> None:
    registry = load_registry(DEFAULT_REGISTRY_PATH, "v6")
    for name, prompt in PROMPTS.items():
        assert len(prompt) <= 6000, (name, len(prompt))
        timings = []
        for _ in range(RUNS):
            start = time.perf_counter()
            jobs = parse_imagine(prompt, registry=registry)
            timings.append(time.perf_counter() - start)
        print(
            f"{name}: {len(prompt)} chars, {len(jobs)} job(s): median {statistics.median(timings) * 1000:.2f} ms, "
            f"max {max(timings) * 1000:.2f} ms over {RUNS} runs"
        )


if __name__ == "__main__":
    main()
