"""`impasto explain`: the readable form, the --json form, and the error form."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from impasto.bots.cli import main

REQUIRED_KEYS = {
    "prompts", "image_prompts", "loras", "width", "height", "aspect_ratio", "seed", "chaos", "stylize", "quality",
    "stop", "tile", "image_weight", "weird", "style", "model", "mode", "visibility",
}  # fmt: skip


@pytest.fixture(autouse=True)
def isolated(clean_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_json_form(capsys: pytest.CaptureFixture[str]) -> None:
    prompt = "https://example.com/a.png space <lora:ink:0.8> --ar 16:9 --no red"
    assert main(["explain", "--json", prompt]) == 0
    out = json.loads(capsys.readouterr().out)
    (job,) = out["jobs"]
    assert set(job) >= REQUIRED_KEYS
    assert job["prompts"] == [{"text": "space <lora:ink:0.8>", "weight": 1.0}, {"text": "red", "weight": -0.5}]
    assert job["image_prompts"] == ["https://example.com/a.png"]
    assert job["loras"] == [{"name": "ink", "weight": 0.8}]
    assert (job["width"], job["height"], job["aspect_ratio"]) == (1344, 768, "16:9")
    assert (job["seed"], job["chaos"], job["stylize"], job["quality"], job["stop"], job["tile"]) == (
        None, 0, 100, 1.0, 100, False,
    )  # fmt: skip
    assert (job["image_weight"], job["weird"], job["style"], job["model"], job["mode"], job["visibility"]) == (
        1.0, 0, None, "v6", "fast", "public",
    )  # fmt: skip


def test_json_jobs_per_permutation(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "--json", "a {red, green} bird --r 2", "--max-permutations", "4"]) == 0
    jobs = json.loads(capsys.readouterr().out)["jobs"]
    assert [j["prompts"][0]["text"] for j in jobs] == ["a red bird", "a red bird", "a green bird", "a green bird"]


def test_readable_form(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "a [red] fox::2 snow --ar 2:3 --no trees --v 5"]) == 0
    out = capsys.readouterr().out
    assert "1 job" in out
    assert "a [red] fox::2 snow --ar 2:3 --no trees --v 5" in out  # brackets are not eaten as rich markup
    assert "448×640" in out
    assert "trees" in out
    assert "avoid" in out


def test_error_form(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "a cat --chaos 150"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip() == "error: --chaos 150 is out of range; allowed 0–100"


def test_json_error_form(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "--json", "a cat --ar 2:3,"]) == 2
    captured = capsys.readouterr()
    error = json.loads(captured.out)["error"]
    assert error["option"] == "--ar"
    assert error["value"] == "2:3,"
    assert "punctuation" in error["message"]
    assert captured.err.count("\n") == 1


def test_registry_option_and_env(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = tmp_path / "models.toml"
    registry.write_text('default = "v9"\n[models.v9]\nfamily = "sd15"\nsource = "org/model"\nnative_px = 512\n')
    assert main(["explain", "--json", "--model-registry", str(registry), "a cat --ar 16:9"]) == 0
    (job,) = json.loads(capsys.readouterr().out)["jobs"]
    assert (job["model"], job["width"], job["height"]) == ("v9", 704, 384)
    monkeypatch.setenv("IMPASTO_MODELS", str(registry))
    assert main(["explain", "--json", "a cat --v 6"]) == 2
    assert "available versions: 9" in json.loads(capsys.readouterr().out)["error"]["message"]


def test_cap_from_the_environment(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMPASTO_MAX_PERMUTATIONS", "2")
    assert main(["explain", "a {1, 2, 3} cat"]) == 2
    assert "would make 3 jobs; at most 2" in capsys.readouterr().err


def test_preferences_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "--json", "--suffix", "--ar 16:9", "--settings", "--relax --s 250", "a cat"]) == 0
    (job,) = json.loads(capsys.readouterr().out)["jobs"]
    assert (job["aspect_ratio"], job["mode"], job["stylize"]) == ("16:9", "relax", 250)
