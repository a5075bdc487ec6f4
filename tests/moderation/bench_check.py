"""Prompt-check time and corpus accuracy (a benchmark that prints numbers; pytest does not collect it).

Writes a 1,000-prompt file (the corpus plus seeded random prompts of 5–40 ordinary words, some with parameters,
``--no`` and permutations) and times ``impasto mod check --file`` on it, in process, as an operator runs it; then
counts the corpus's false positives and misses and times 6,000-character prompts.

Run: .venv/bin/python tests/moderation/bench_check.py [OUT_FILE]
"""

from __future__ import annotations

import random
import statistics
import sys
import time
import tomllib
from pathlib import Path

from impasto.queue.moderation.policy import NO_SERVER, load_policy
from impasto.queue.moderation.verdict import check_prompt

HERE = Path(__file__).parent
WORDS = (  # noqa: SIM905 - a word list reads better as prose
    "a an the of in on at with lighthouse cliff dusk storm sea castle forest dragon knight portrait "
    "woman man child cat dog city street neon rain night morning golden hour oil painting watercolor "
    "sketch cinematic lighting photograph 35mm bokeh mountain river bridge train station market flowers "
    "garden kitchen chicken breast birthday party balloons Scunthorpe Sussex shoot photo blood orange "
    "vampire horror armour sword robot spaceship galaxy nebula ocean waves sunset sunrise winter snow "
    "desert cactus 海边 城市 夜景 猫 花园 山水画"
).split()
PARAMS = ["", "", "", " --ar 16:9", " --no people, gore", " --s 250 --c 10", " --ar 2:3 --style raw", " --tile"]


def prompts(count: int) -> list[str]:
    corpus = tomllib.loads((HERE / "corpus.toml").read_text("utf-8"))
    out = [text for text, _ in corpus["refused"]] + list(corpus["allowed"])
    rng = random.Random(20261201)
    while len(out) < count:
        words = rng.choices(WORDS, k=rng.randint(5, 40))
        if rng.random() < 0.1:
            words.insert(rng.randrange(len(words)), "{red, blue}")
        out.append(" ".join(words) + rng.choice(PARAMS))
    return out[:count]


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("/tmp/impasto-mod-bench.txt")
    out.write_text("\n".join(prompts(1000)) + "\n", "utf-8")
    from impasto.bots.cli import main as impasto

    started = time.perf_counter()
    impasto(["mod", "check", "--file", str(out)])  # prints the counts and the median per prompt
    print(f"whole `impasto mod check --file` run (policy load included): {time.perf_counter() - started:.2f} s")

    policy = load_policy()
    corpus = tomllib.loads((HERE / "corpus.toml").read_text("utf-8"))
    misses = [t for t, c in corpus["refused"] if check_prompt(policy, NO_SERVER, t, nsfw_channel=False).category != c]
    false = [t for t in corpus["allowed"] if not check_prompt(policy, NO_SERVER, t, nsfw_channel=False).allowed]
    print(
        f"corpus: {len(corpus['refused'])} must-refuse, {len(corpus['allowed'])} must-pass; "
        f"{len(misses)} missed, {len(false)} false positives"
    )

    started = time.perf_counter()
    policy = load_policy()
    print(f"policy load and compile: {(time.perf_counter() - started) * 1000:.0f} ms")
    long = ("a lighthouse on a cliff at dusk, s.e.x, 裸体, " * 200)[:6000]
    timings = []
    for _ in range(50):
        started = time.perf_counter()
        check_prompt(policy, NO_SERVER, long, nsfw_channel=False)
        timings.append(time.perf_counter() - started)
    print(f"6000-character prompt: median {statistics.median(timings) * 1000:.2f} ms over 50 runs")


if __name__ == "__main__":
    main()
