"""Every parameter: long and short forms, the em-dash, defaults, ranges, refused ones, and the one-line errors."""

from __future__ import annotations

import pytest
from language_helpers import one, refused

from impasto.bots.language.parameters import REFUSED
from impasto.bots.language.parser import parse_imagine
from impasto.engine.registry import Registry


@pytest.mark.parametrize(
    ("params", "field", "value"),
    [
        ("--aspect 16:9", "aspect_ratio", "16:9"),
        ("--ar 2:3", "aspect_ratio", "2:3"),
        ("--ar 1920:1080", "aspect_ratio", "16:9"),  # simplified, as Midjourney does
        ("--chaos 50", "chaos", 50),
        ("--c 100", "chaos", 100),
        ("--c 0", "chaos", 0),
        ("--quality .25", "quality", 0.25),
        ("--q .5", "quality", 0.5),
        ("--q 0.5", "quality", 0.5),
        ("--q 1", "quality", 1.0),
        ("--q 2", "quality", 2.0),
        ("--seed 0", "seed", 0),
        ("--seed 4294967295", "seed", 4294967295),
        ("--stop 10", "stop", 10),
        ("--stop 100", "stop", 100),
        ("--style raw", "style", "raw"),
        ("--style RAW", "style", "raw"),
        ("--raw", "style", "raw"),
        ("--stylize 1000", "stylize", 1000),
        ("--s 0", "stylize", 0),
        ("--tile", "tile", True),
        ("--weird 3000", "weird", 3000),
        ("--w 250", "weird", 250),
        ("--fast", "mode", "fast"),
        ("--relax", "mode", "relax"),
        ("--turbo", "mode", "turbo"),
        ("--public", "visibility", "public"),
        ("--stealth", "visibility", "stealth"),
        ("--draft", "draft", True),
        ("--v 5", "model", "v5"),
        ("--version 6", "model", "v6"),
        ("--niji", "model", "niji6"),
        ("--niji 6", "model", "niji6"),
        ("--AR 3:2", "aspect_ratio", "3:2"),  # option names are case-insensitive
    ],
)
def test_parameter_forms(params: str, field: str, value: object, registry: Registry) -> None:
    job = one(f"a lighthouse {params}", registry)
    assert getattr(job, field) == value


def test_iw_range_with_an_image(registry: Registry) -> None:
    assert one("https://e.com/a.png cat --iw 0", registry).image_weight == 0.0
    assert one("https://e.com/a.png cat --iw 3", registry).image_weight == 3.0
    err = refused("https://e.com/a.png cat --iw 3.5", registry)
    assert (err.option, err.value) == ("--iw", "3.5")
    assert "0–3" in str(err)


def test_em_dash_is_double_dash(registry: Registry) -> None:
    job = one("a lighthouse —ar 16:9 —no boats —tile", registry)
    assert (job.aspect_ratio, job.no, job.tile) == ("16:9", ("boats",), True)
    assert job.display == "a lighthouse --ar 16:9 --no boats --tile"


def test_many_parameters_together(registry: Registry) -> None:
    job = one("vibrant california poppies --ar 5:4 --c 10 --s 250 --stop 80 --seed 42 --q .5 --style raw", registry)
    assert (job.aspect_ratio, job.chaos, job.stylize, job.stop, job.seed, job.quality, job.style) == (
        "5:4",
        10,
        250,
        80,
        42,
        0.5,
        "raw",
    )
    assert job.display == (
        "vibrant california poppies --ar 5:4 --chaos 10 --stylize 250 --stop 80 --seed 42 --q 0.5 --style raw"
    )


@pytest.mark.parametrize(
    ("params", "option", "value", "allowed"),
    [
        ("--chaos 101", "--chaos", "101", "0–100"),
        ("--c -1", "--c", "-1", "0–100"),
        ("--c 5.5", "--c", "5.5", "0–100"),
        ("--q 3", "--q", "3", ".25, .5, 1, 2"),
        ("--q .75", "--q", ".75", ".25, .5, 1, 2"),
        ("--seed 4294967296", "--seed", "4294967296", "0–4294967295"),
        ("--seed -1", "--seed", "-1", "0–4294967295"),
        ("--stop 9", "--stop", "9", "10–100"),
        ("--stop 101", "--stop", "101", "10–100"),
        ("--stylize 1001", "--stylize", "1001", "0–1000"),
        ("--s abc", "--s", "abc", "0–1000"),
        ("--weird 3001", "--weird", "3001", "0–3000"),
        ("--ar 5:1", "--ar", "5:1", "1:4 to 4:1"),
        ("--ar 1:5", "--ar", "1:5", "1:4 to 4:1"),
        ("--ar 1.39:1", "--ar", "1.39:1", "whole numbers"),
        ("--ar 0:1", "--ar", "0:1", "1:4 to 4:1"),
        ("--ar wide", "--ar", "wide", "W:H"),
        ("--style cute", "--style", "cute", "only --style raw"),
        ("--v six", "--v", "six", "version number"),
    ],
)
def test_out_of_range(params: str, option: str, value: str, allowed: str, registry: Registry) -> None:
    err = refused(f"a lighthouse {params}", registry)
    assert (err.option, err.value) == (option, value)
    assert allowed in str(err)
    assert option in str(err)


def test_repeat(registry: Registry) -> None:
    jobs = parse_imagine("a cat --repeat 3", registry=registry)
    assert len(jobs) == 3
    assert jobs[0].display == "a cat"  # each job is one render; the repeat is not part of it
    assert len(parse_imagine("a cat --r 1", registry=registry)) == 1
    assert len(parse_imagine("a cat --r 40", registry=registry, max_permutations=40)) == 40
    err = refused("a cat --r 5", registry)
    assert (err.option, err.value) == ("--r", "5")
    assert "1–4" in str(err)
    assert refused("a cat --r 0", registry).option == "--r"


def test_repeat_times_permutations_is_capped(registry: Registry) -> None:
    err = refused("a {red, blue} cat --r 3", registry)
    assert "6 jobs" in str(err)
    assert "at most 4" in str(err)
    assert len(parse_imagine("a {red, blue} cat --r 2", registry=registry)) == 4


def test_value_glued_to_punctuation(registry: Registry) -> None:
    err = refused("poppies --ar 2:3,", registry)
    assert (err.option, err.value) == ("--ar", "2:3,")
    assert "punctuation" in str(err)
    assert "--ar 2:3" in str(err)
    assert "punctuation" in str(refused("poppies --chaos 50.", registry))
    assert "punctuation" in str(refused("poppies --style raw!", registry))


def test_missing_value(registry: Registry) -> None:
    err = refused("a cat --ar", registry)
    assert err.option == "--ar"
    assert "needs a value" in str(err)
    assert "--ar 16:9" in str(err)


def test_unknown_parameter_suggests(registry: Registry) -> None:
    err = refused("a cat --aspcet 2:3", registry)
    assert err.option == "--aspcet"
    assert "did you mean --aspect?" in str(err)
    assert "did you mean --stylize?" in str(refused("a cat --stylise 100", registry))
    err = refused("a cat --zzzzqqq", registry)
    assert "unknown parameter --zzzzqqq" in str(err)


def test_duplicate_parameter(registry: Registry) -> None:
    err = refused("a cat --ar 1:1 --aspect 2:3", registry)
    assert (err.option, err.value) == ("--aspect", "2:3")
    assert "twice" in str(err)
    assert "twice" in str(refused("a cat --tile --tile", registry))
    assert "twice" in str(refused("a cat --style raw --raw", registry))
    assert "twice" in str(refused("a cat --no a --no b", registry))


def test_conflicting_choices(registry: Registry) -> None:
    assert "choose one" in str(refused("a cat --fast --relax", registry))
    assert "choose one" in str(refused("a cat --public --stealth", registry))
    assert "choose one" in str(refused("a cat --v 6 --niji", registry))


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refused_midjourney_parameters(name: str, registry: Registry) -> None:
    err = refused(f"a cat --{name} https://e.com/a.png", registry)
    assert err.option == f"--{name}"
    assert "impasto does not serve" in str(err)


@pytest.mark.parametrize("params", ["--sv 4", "--cref https://e.com/a.png --cw 50", "--p", "--video", "--hd"])
def test_refused_examples(params: str, registry: Registry) -> None:
    assert "does not serve" in str(refused(f"a cat {params}", registry))


def test_version_and_niji_come_from_the_registry(registry: Registry) -> None:
    err = refused("a cat --v 7", registry)
    assert (err.option, err.value) == ("--v", "7")
    assert "available versions: 5, 6" in str(err)
    err = refused("a cat --niji 5", registry)
    assert "available niji versions: 6" in str(err)
    assert one("a cat --v 5", registry).model == "v5"


def test_zoom_only_in_remix(registry: Registry) -> None:
    err = refused("a cat --zoom 2", registry)
    assert err.option == "--zoom"
    assert "Custom Zoom" in str(err)


def test_weird_is_carried(registry: Registry) -> None:
    assert one("a cat --weird 1000", registry).weird == 1000


def test_long_values_are_clipped_in_messages(registry: Registry) -> None:
    err = refused("a cat --ar " + "9" * 3000, registry)
    assert len(str(err)) < 200
    err = refused("a cat --" + "x" * 3000, registry)
    assert len(str(err)) < 200
