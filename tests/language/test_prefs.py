"""/prefer suffix, /prefer option set and /settings as parser inputs; precedence prompt > suffix > settings."""

from __future__ import annotations

import pytest
from language_helpers import one, refused

from impasto.bots.language.errors import PromptError
from impasto.bots.language.prefs import Preferences, validate_option, validate_suffix
from impasto.engine.registry import Registry


def test_validate_suffix_accepts_parameters_only() -> None:
    assert validate_suffix("  --no orange   --ar 16:9 ") == "--no orange --ar 16:9"
    assert validate_suffix("—style raw") == "--style raw"
    assert validate_suffix("") == ""
    with pytest.raises(PromptError, match="parameters only"):
        validate_suffix("orange::-1")
    with pytest.raises(PromptError, match="parameters only"):
        validate_suffix("--no orange orange::-1")
    with pytest.raises(PromptError, match="out of range"):
        validate_suffix("--chaos 500")
    with pytest.raises(PromptError, match="does not serve"):
        validate_suffix("--cref https://e.com/a.png")
    with pytest.raises(PromptError, match="permutations"):
        validate_suffix("--ar {1:1, 2:3}")


def test_validate_option() -> None:
    validate_option("mine", "--tile --ar 7:4")
    validate_option("--wide", "--ar 16:9")
    validate_option("gone", "")  # empty deletes
    with pytest.raises(PromptError, match="Midjourney parameter") as info:
        validate_option("ar", "--ar 1:1")
    assert info.value.option == "ar"
    with pytest.raises(PromptError, match="does not serve"):
        validate_option("mine", "--hd --ar 7:4")
    with pytest.raises(PromptError, match="not allowed"):
        validate_option("my option", "--tile")


def test_at_most_twenty_options() -> None:
    Preferences(options={f"o{i}": "--tile" for i in range(20)})
    with pytest.raises(PromptError, match="at most 20"):
        Preferences(options={f"o{i}": "--tile" for i in range(21)})


def test_precedence(registry: Registry) -> None:
    prefs = Preferences(suffix="--ar 2:3 --s 500", settings="--style raw --s 250 --relax --v 5")
    job = one("a cat", registry, prefs)
    assert (job.aspect_ratio, job.stylize, job.style, job.mode, job.model) == ("2:3", 500, "raw", "relax", "v5")
    job = one("a cat --ar 16:9 --s 50 --fast --niji", registry, prefs)
    assert (job.aspect_ratio, job.stylize, job.style, job.mode, job.model) == ("16:9", 50, "raw", "fast", "niji6")
    assert job.display == "a cat --ar 16:9 --stylize 50 --fast --niji --style raw"


def test_no_lists_combine(registry: Registry) -> None:
    job = one("a bowl --no pears", registry, Preferences(suffix="--no orange, pears"))
    assert job.no == ("pears", "orange")
    assert [p.text for p in job.negative] == ["pears", "orange"]


def test_custom_option_expands(registry: Registry) -> None:
    prefs = Preferences(options={"mine": "--tile --ar 7:4"})
    job = one("a wallpaper --mine --c 5", registry, prefs)
    assert (job.tile, job.aspect_ratio, job.chaos) == (True, "7:4", 5)
    err = refused("a wallpaper --mine --ar 1:1", registry, prefs)
    assert "twice" in str(err)
    assert "did you mean --mine?" in str(refused("a wallpaper --mien", registry, prefs))


def test_bad_preferences_say_where(registry: Registry) -> None:
    err = refused("a cat", registry, Preferences(suffix="--v 9"))
    assert str(err).startswith("in your /prefer suffix:")
    err = refused("a cat", registry, Preferences(settings="--chaos 900"))
    assert str(err).startswith("in your /settings:")
