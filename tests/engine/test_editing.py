"""A1111 parity: LoRA tags leave no trace in the text, BREAK starts a new chunk, prompt editing and alternation
switch the conditioning at the right step (checked on what the UNet actually receives)."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from engine_helpers import png, spec_for, to_png

from impasto.engine.conditioning import Segments, break_chunks, build_segments, strip_loras
from impasto.engine.editing import segment_schedule, steps_to_run
from impasto.engine.engine import Engine
from impasto.engine.prompt_schedule import all_variants, has_schedule, prompt_schedule

# --- Torch-free reading ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "clean", "loras"),
    [
        ("a cat <lora:ink:.5>", "a cat", [("ink", 0.5)]),
        ("a cat <lora:ink:+0.5> sketch", "a cat sketch", [("ink", 0.5)]),
        ("a cat <lora:ink:-1.>", "a cat", [("ink", -1.0)]),
        ("a cat, <lora:ink:0.8>, sketch", "a cat, sketch", [("ink", 0.8)]),
        ("a cat,<lora:ink>,<lora:paper:2>, sketch", "a cat, sketch", [("ink", 1.0), ("paper", 2.0)]),
        ("<lora:ink:0.5>, a cat", "a cat", [("ink", 0.5)]),
        ("plain text,, kept as written", "plain text,, kept as written", []),
    ],
)
def test_lora_tags_leave_neither_tag_nor_stray_comma(text: str, clean: str, loras: list[tuple[str, float]]) -> None:
    assert strip_loras(text) == (clean, loras)


def test_break_splits_on_the_capital_word_only() -> None:
    assert break_chunks("a red cat BREAK a blue dog") == ["a red cat", "a blue dog"]
    assert break_chunks("BREAKFAST, break, Break") == ["BREAKFAST, break, Break"]
    assert break_chunks("a BREAK BREAK b BREAK") == ["a", "b"]


@pytest.mark.parametrize(
    ("text", "steps", "expected"),
    [
        ("a [cat:dog:0.5] sky", 4, [(2, "a cat sky"), (4, "a dog sky")]),
        ("a [cat:dog:3] sky", 10, [(3, "a cat sky"), (10, "a dog sky")]),
        ("a [dog:2] b", 4, [(2, "a  b"), (4, "a dog b")]),
        ("[cat::3] x", 4, [(3, "cat x"), (4, " x")]),
        ("[a|b|c] z", 4, [(1, "a z"), (2, "b z"), (3, "c z"), (4, "a z")]),
        ("[(cat:1.2):dog:2]", 4, [(2, "(cat:1.2)"), (4, "dog")]),
        ("x [a:[b|c]:2]", 4, [(2, "x a"), (3, "x b"), (4, "x c")]),
        ("[cat:dog:0.1]", 4, [(4, "dog")]),  # int(0.4) = 0: "to" from the first step, as in A1111
        ("[cat:dog:99]", 4, [(4, "cat")]),
    ],
)
def test_prompt_schedule_follows_a1111(text: str, steps: int, expected: list[tuple[int, str]]) -> None:
    assert prompt_schedule(text, steps) == expected
    assert has_schedule(text)


@pytest.mark.parametrize("text", ["[word] (x:1.3)", "a [b:c", "[a:b:c]", r"\[a:b:1\]", "[[big]]", "(a:b:1)"])
def test_brackets_that_are_not_schedules_stay_as_text(text: str) -> None:
    assert not has_schedule(text)
    assert prompt_schedule(text, 4) == [(4, text)]


def test_all_variants_lists_every_text_a_schedule_can_read() -> None:
    assert all_variants("a [cat:dog:0.5] [red|blue]") == ["a cat red", "a cat blue", "a dog red", "a dog blue"]


def test_segment_schedule_merges_the_schedules_of_every_segment() -> None:
    segments = Segments((("[cat:dog:2]", 1.0), ("[red|blue]", 0.5)), (("[blur::3]", 1.0),))
    plan = segment_schedule(segments, 4)
    assert [end for end, _ in plan] == [1, 2, 3, 4]
    assert plan[0][1] == Segments((("cat", 1.0), ("red", 0.5)), (("blur", 1.0),))
    assert plan[2][1] == Segments((("dog", 1.0), ("red", 0.5)), (("blur", 1.0),))
    assert plan[3][1] == Segments((("dog", 1.0), ("blue", 0.5)), (("", 1.0),))
    plain = Segments((("a cat", 1.0),), (("", 1.0),))
    assert segment_schedule(plain, 4) == [(4, plain)]


def test_steps_run_counts_what_the_pipeline_runs() -> None:
    assert steps_to_run("txt2img", 8, None, None) == 8
    assert steps_to_run("img2img", 8, 0.35, None) == 2
    assert steps_to_run("txt2img", 8, None, [3.0, 2.0, 0.0]) == 2


# --- Through the tiny models ---------------------------------------------------------------------------------------


def _raw(text: str) -> Segments:
    return build_segments(((text, 1.0),), style_raw=True, stylize=100)


def test_break_starts_a_new_77_token_chunk(engine: Engine, model: str) -> None:
    encoder = engine.models.get(model).encoder
    one = encoder.encode(_raw("a red cat")).kwargs["prompt_embeds"]
    two = encoder.encode(_raw("a red cat BREAK a blue dog")).kwargs["prompt_embeds"]
    alone = encoder.encode(_raw("a blue dog")).kwargs["prompt_embeds"]
    assert one.shape[1] == 77
    assert two.shape[1] == 154
    assert torch.allclose(two[:, :77], one, atol=1e-5)
    assert torch.allclose(two[:, 77:], alone, atol=1e-5)
    joined = encoder.encode(_raw("a red cat a blue dog")).kwargs["prompt_embeds"]
    assert joined.shape[1] == 77  # without BREAK the same words share one chunk


class _UNetSpy:
    """Records the text conditioning the UNet receives at every step (the positive half under guidance)."""

    def __init__(self, unet: torch.nn.Module) -> None:
        self.hidden: list[torch.Tensor] = []
        self.pooled: list[torch.Tensor] = []
        self._handle = unet.register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, module: Any, args: Any, kwargs: dict[str, Any]) -> None:
        hidden = kwargs["encoder_hidden_states"]
        self.hidden.append(hidden[hidden.shape[0] // 2 :].detach().clone())
        added = kwargs.get("added_cond_kwargs") or {}
        if "text_embeds" in added:
            pooled = added["text_embeds"]
            self.pooled.append(pooled[pooled.shape[0] // 2 :].detach().clone())

    def close(self) -> None:
        self._handle.remove()


def _expected(engine: Engine, model: str, *texts: str) -> list[dict[str, torch.Tensor]]:
    return [c.kwargs for c in engine.models.get(model).encoder.encode_many([_raw(t) for t in texts])]


def test_prompt_editing_switches_the_embeddings_after_the_named_step(engine: Engine, model: str) -> None:
    spy = _UNetSpy(engine.models.get(model).pipe.unet)
    try:
        engine.imagine(spec_for(model, prompts=(("[a red cat:a blue dog:2]", 1.0),), steps=4, style_raw=True))
    finally:
        spy.close()
    cat, dog = _expected(engine, model, "a red cat", "a blue dog")
    assert len(spy.hidden) == 4
    for step, hidden in enumerate(spy.hidden, start=1):
        want = cat if step <= 2 else dog
        assert torch.allclose(hidden, want["prompt_embeds"].expand_as(hidden), atol=1e-5), f"step {step}"
    if model == "tiny-sdxl":  # the pooled embedding switches with them
        assert torch.allclose(spy.pooled[1], cat["pooled_prompt_embeds"].expand_as(spy.pooled[1]), atol=1e-5)
        assert torch.allclose(spy.pooled[2], dog["pooled_prompt_embeds"].expand_as(spy.pooled[2]), atol=1e-5)


def test_alternation_switches_every_step_and_changes_the_picture(engine: Engine, model: str) -> None:
    spy = _UNetSpy(engine.models.get(model).pipe.unet)
    try:
        alternating = engine.imagine(
            spec_for(model, prompts=(("a [red|blue] cat", 1.0),), steps=4, style_raw=True, batch_size=1)
        )
    finally:
        spy.close()
    red, blue = _expected(engine, model, "a red cat", "a blue cat")
    for step, hidden in enumerate(spy.hidden, start=1):
        want = red if step % 2 else blue
        assert torch.allclose(hidden, want["prompt_embeds"].expand_as(hidden), atol=1e-5), f"step {step}"
    plain = engine.imagine(spec_for(model, prompts=(("a red cat", 1.0),), steps=4, style_raw=True, batch_size=1))
    assert alternating.images[0] != plain.images[0]


def test_prompt_editing_counts_the_steps_an_img2img_runs(engine: Engine) -> None:
    model = "tiny-sd15"
    source = to_png(png(engine.imagine(spec_for(model, batch_size=1)).images[0]))
    spy = _UNetSpy(engine.models.get(model).pipe.unet)
    try:  # vary strong: 0.7 of 10 steps = 7 steps run; "[…:0.5]" switches after int(3.5) = 3 of them
        engine.variation(
            spec_for(model, prompts=(("[a red cat:a blue dog:0.5]", 1.0),), steps=10, style_raw=True, batch_size=2),
            source,
            "strong",
        )
    finally:
        spy.close()
    cat, dog = _expected(engine, model, "a red cat", "a blue dog")
    assert len(spy.hidden) == 7
    assert all(torch.allclose(h, cat["prompt_embeds"].expand_as(h), atol=1e-5) for h in spy.hidden[:3])
    assert all(torch.allclose(h, dog["prompt_embeds"].expand_as(h), atol=1e-5) for h in spy.hidden[3:])


def test_deep_nesting_stays_cheap_and_bounded() -> None:
    deep = "[" * 3000 + "a:b:1]" * 3000
    assert prompt_schedule(deep, 4)[-1][0] == 4
    assert not has_schedule("[" * 6000 + "a")
    assert prompt_schedule("(" * 6000 + "a", 4) == [(4, "(" * 6000 + "a")]


def test_prompt_editing_runs_through_inpaint_and_stop(engine: Engine, model: str) -> None:
    source = to_png(png(engine.imagine(spec_for(model, batch_size=1)).images[0]))
    spy = _UNetSpy(engine.models.get(model).pipe.unet)
    try:
        zoomed = engine.outpaint(spec_for(model, prompts=(("a [red|blue] cat", 1.0),), batch_size=1), source, zoom=2.0)
        stopped = engine.imagine(
            spec_for(model, prompts=(("[a red cat:a blue dog:1]", 1.0),), steps=4, stop=50, style_raw=True)
        )
    finally:
        spy.close()
    assert zoomed.kind == "zoom"
    assert stopped.steps == 2
    red, blue = spy.hidden[0], spy.hidden[1]
    assert not torch.allclose(red, blue)  # the inpaint pipeline took the swapped embeddings too
    cat, dog = _expected(engine, model, "a red cat", "a blue dog")
    last = spy.hidden[-1]
    assert torch.allclose(last, dog["prompt_embeds"].expand_as(last), atol=1e-5)
    assert torch.allclose(spy.hidden[-2], cat["prompt_embeds"].expand_as(spy.hidden[-2]), atol=1e-5)
