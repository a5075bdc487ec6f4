"""The image store's keys and the plans file."""

from __future__ import annotations

from pathlib import Path

import pytest

from impasto.storage.images import ImageKeyError, ImageStore
from impasto.storage.plans import Costs, PlanError, load_plans, parse_plans


def test_image_store_is_content_addressed(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "images")
    key = store.put(b"png bytes")
    assert key.endswith(".png")
    assert len(key) == 64 + 4
    assert store.put(b"png bytes") == key  # the same bytes, the same key, one file
    assert store.get(key) == b"png bytes"
    assert store.path(key).parent.parent.parent == tmp_path / "images"
    assert store.put(b"other", ext="webp") != key
    assert store.exists(key)


@pytest.mark.parametrize("bad", ["../../etc/passwd", "a" * 64 + ".png/../x", "/abs.png", "A" * 64 + ".png", ""])
def test_image_keys_cannot_leave_the_store(tmp_path: Path, bad: str) -> None:
    store = ImageStore(tmp_path)
    with pytest.raises(ImageKeyError):
        store.path(bad)


def test_image_extension_is_checked(tmp_path: Path) -> None:
    with pytest.raises(ImageKeyError, match="extension"):
        ImageStore(tmp_path).put(b"x", ext="../png")


def test_shipped_plans_follow_midjourneys_shape() -> None:
    plans = load_plans()
    assert plans.default == "basic"
    basic, pro = plans.get("basic"), plans.get("pro")
    assert (basic.max_concurrent_jobs, basic.max_queued_jobs, basic.max_permutations, basic.relax) == (3, 10, 4, False)
    assert (pro.max_permutations, pro.relax) == (40, True)
    assert plans.get("standard").max_permutations == 10
    assert plans.best(["basic", "pro", "nonexistent"]).name == "pro"
    assert plans.best([]).name == "basic"
    assert plans.costs.multiplier("turbo") == 2.0
    assert plans.costs.multiplier("relax") == 0.0


def test_estimate_scales_with_pixels_steps_and_images() -> None:
    costs = Costs(gpu_seconds_per_megapixel_step=0.1)
    one = costs.estimate_gpu_seconds(width_px=1000, height_px=1000, steps=10, images=1)
    assert one == pytest.approx(1.0)
    assert costs.estimate_gpu_seconds(width_px=2000, height_px=1000, steps=20, images=4) == pytest.approx(16.0)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({}, "at least one"),
        ({"plans": {"a": {"fast_gpu_hours": -1}}}, "fast_gpu_hours must be a number"),
        ({"plans": {"a": {"relax": "yes"}}}, "relax must be true or false"),
        ({"plans": {"a": {"max_permutations": 41}}}, "max_permutations must be 1–40"),
        ({"plans": {"a": {"colour": 1}}}, "unknown keys colour"),
        ({"default": "b", "plans": {"a": {}}}, "default = 'b' is not a plan"),
    ],
)
def test_bad_plans_files_say_what_is_wrong(raw: dict[str, object], message: str) -> None:
    with pytest.raises(PlanError, match=message):
        parse_plans(raw)


def test_missing_plans_file(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match="does not exist"):
        load_plans(tmp_path / "nope.toml")
