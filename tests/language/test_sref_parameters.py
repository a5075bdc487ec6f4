"""``--sref URL…`` and ``--sw 0–1000``: parsed into ``style_references`` / ``style_weight``, shown by explain."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from language_helpers import one, refused

from impasto.bots.cli import main
from impasto.bots.language.job import Job
from impasto.bots.language.parser import parse_remix
from impasto.engine.registry import Registry

CDN = "https://cdn.example.com/attachments/1/2/style.png?ex=1&is=2&hm=" + "f" * 150  # longer than 100 characters


def test_sref_and_sw(registry: Registry) -> None:
    job = one(f"a cat --sref https://e.com/a.png {CDN} --sw 250", registry)
    assert job.style_references == ("https://e.com/a.png", CDN)
    assert job.style_weight == 250
    assert job.image_prompts == ()  # style references are not image prompts
    assert f"--sref https://e.com/a.png {CDN} --sw 250" in job.display


def test_defaults(registry: Registry) -> None:
    job = one("a cat", registry)
    assert (job.style_references, job.style_weight) == ((), 100)
    assert one("a cat --sref https://e.com/a.webp", registry).style_weight == 100


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ("--sref", "needs an image link"),
        ("--sref random", "is not an image link"),
        ("--sref 1234567", "style codes are not served"),
        ("--sref https://e.com/page", "is not an image link"),
        ("--sref https://e.com/a.png --sw 1001", "out of range; allowed 0–1000"),
        ("--sref https://e.com/a.png --sw -5", "not a whole number"),
        ("--sw 300", "add --sref"),
        ("--sref " + " ".join(f"https://e.com/{i}.png" for i in range(6)), "at most 5 image links"),
        ("--sref https://e.com/" + "a" * 2000 + ".png", "at most 2000"),
    ],
)
def test_refusals_name_the_option(params: str, words: str, registry: Registry) -> None:
    err = refused(f"a cat {params}", registry)
    assert words in str(err)
    assert err.option in ("--sref", "--sw")


def test_remix_keeps_and_changes_them(registry: Registry) -> None:
    original = one("a cat --sref https://e.com/a.png --sw 300", registry)
    kept = parse_remix(original, "a dog", registry=registry)
    assert (kept.style_references, kept.style_weight) == (("https://e.com/a.png",), 300)
    weighted = parse_remix(original, "--sw 50", registry=registry)
    assert (weighted.style_references, weighted.style_weight) == (("https://e.com/a.png",), 50)
    assert isinstance(weighted, Job)


def test_explain_json_shows_them(
    clean_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["explain", "--json", "a cat --sref https://e.com/a.png https://e.com/b.jpg --sw 700"]) == 0
    (job,) = json.loads(capsys.readouterr().out)["jobs"]
    assert job["style_references"] == ["https://e.com/a.png", "https://e.com/b.jpg"]
    assert job["style_weight"] == 700
    assert main(["explain", "a cat --sref https://e.com/a.png"]) == 0
    assert "style reference" in capsys.readouterr().out
