"""From a claimed job to the engine call: every rendering action's row becomes the right engine input."""

from __future__ import annotations

import dataclasses

import pytest

from impasto.engine.spec import Blend, Inpaint, Outpaint, Upscale, Vary
from impasto.queue.actions import ACTIONS, Action
from impasto.queue.specs import DescribeWork, UnrenderableJob, build_describe, build_work
from impasto.storage.lifecycle import ClaimedJob

STORE = {"src": b"source", "mask": b"mask", "a": b"a", "b": b"b"}


def claimed(action: Action, **changes: object) -> ClaimedJob:
    values: dict[str, object] = {
        "job_id": "job1",
        "action": action.value,
        "image_index": None,
        "params": {"prompts": [{"text": "a cat", "weight": 1.0}], "zoom": 1.7, "extra": {"dimensions": "portrait"}},
        "prompt": "a cat",
        "display": "a cat",
        "seed": 7,
        "model": "tiny-sd15",
        "mode": "fast",
        "attempt": 1,
        "parent_id": "parent",
        "input_image_keys": ("src", "mask") if action is Action.VARY_REGION else ("src",),
    }
    if action is Action.BLEND:
        values["input_image_keys"] = ("a", "b")
    values.update(changes)
    return ClaimedJob(**values)  # type: ignore[arg-type]


EXPECTED = {
    Action.IMAGINE: None,
    Action.REROLL: None,
    Action.BLEND: Blend(images=(b"a", b"b"), dimensions="portrait"),
    Action.VARIATION: Vary(image=b"source", strength="strong"),
    Action.VARY_STRONG: Vary(image=b"source", strength="strong"),
    Action.VARY_SUBTLE: Vary(image=b"source", strength="subtle"),
    Action.VARY_REGION: Inpaint(image=b"source", mask=b"mask"),
    Action.UPSCALE_SUBTLE: Upscale(image=b"source", creative=False, scale=2),
    Action.UPSCALE_CREATIVE: Upscale(image=b"source", creative=True, scale=2),
    Action.UPSCALE_SUBTLE_4X: Upscale(image=b"source", creative=False, scale=4),
    Action.UPSCALE_CREATIVE_4X: Upscale(image=b"source", creative=True, scale=4),
    Action.ZOOM_OUT_2: Outpaint(image=b"source", zoom=2.0),
    Action.ZOOM_OUT_1_5: Outpaint(image=b"source", zoom=1.5),
    Action.ZOOM_CUSTOM: Outpaint(image=b"source", zoom=1.7),
    Action.PAN_LEFT: Outpaint(image=b"source", pan="left"),
    Action.PAN_RIGHT: Outpaint(image=b"source", pan="right"),
    Action.PAN_UP: Outpaint(image=b"source", pan="up"),
    Action.PAN_DOWN: Outpaint(image=b"source", pan="down"),
    Action.MAKE_SQUARE: Outpaint(image=b"source", square=True),
}


def test_every_rendering_action_has_an_expected_engine_call() -> None:
    # /describe goes to the captioner, not the painter (below).
    assert set(EXPECTED) | {Action.DESCRIBE} == {a for a in Action if a.renders}


def test_a_describe_job_becomes_the_captioners_input_and_never_a_render() -> None:
    job = claimed(Action.DESCRIBE, params={"model": "tiny-sd15", "offset": 2})
    assert build_describe(job, STORE.__getitem__) == DescribeWork("job1", "tiny-sd15", b"source", 2)
    with pytest.raises(UnrenderableJob, match="describe"):
        build_work(job, STORE.__getitem__)
    with pytest.raises(UnrenderableJob, match="not in the image store"):
        build_describe(dataclasses.replace(job, input_image_keys=("gone",)), STORE.__getitem__)


@pytest.mark.parametrize("action", list(EXPECTED))
def test_the_row_becomes_the_engine_call(action: Action) -> None:
    work = build_work(claimed(action), STORE.__getitem__)
    assert work.action == EXPECTED[action]
    single = ACTIONS[action].output == "single"
    assert work.spec.batch_size == (1 if single else 4)


@pytest.mark.parametrize("action", [a for a in Action if not a.renders])
def test_actions_that_paint_nothing_never_reach_a_worker(action: Action) -> None:
    with pytest.raises(UnrenderableJob):
        build_work(claimed(action), STORE.__getitem__)


def test_an_unknown_stored_action_is_refused_by_name() -> None:
    with pytest.raises(UnrenderableJob, match="zz"):
        build_work(dataclasses.replace(claimed(Action.IMAGINE), action="zz"), STORE.__getitem__)
