"""/describe engine side: the tiny CLIP captioner through the real loading path, four prompts that parse."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from engine_helpers import to_png
from PIL import Image

from impasto.bots.cli import main
from impasto.bots.language.parser import parse_imagine
from impasto.engine.describe import FLAVORS, LIGHTING, MEDIUMS, STYLES, SUBJECTS, aspect_of
from impasto.engine.engine import Engine
from impasto.engine.errors import InvalidInput
from impasto.engine.registry import Registry


def _picture(width: int, height: int, colour: tuple[int, int, int]) -> bytes:
    image = Image.new("RGB", (width, height), colour)
    image.paste((255 - colour[0], 40, 90), (width // 4, height // 4, width // 2, height // 2))
    return to_png(image)


def test_four_prompts_that_parse_with_the_image_aspect(engine: Engine, registry: Registry) -> None:
    prompts = engine.describe("tiny-sdxl", _picture(300, 200, (200, 60, 10)))
    assert len(prompts) == 4
    assert len(set(prompts)) == 4
    for prompt in prompts:
        assert prompt.endswith(" --ar 3:2")
        job = parse_imagine(prompt, registry=registry)[0]
        assert job.aspect_ratio == "3:2"
        words = job.prompts[0].text.split(", ")
        assert words[0] in SUBJECTS
        assert words[1] in MEDIUMS
        assert words[2] in STYLES
        assert words[3] in LIGHTING
        assert set(words[4:]) <= set(FLAVORS)


def test_ranking_is_deterministic_and_follows_the_image(engine: Engine) -> None:
    red = _picture(256, 256, (220, 20, 20))
    assert engine.describe("tiny-sd15", red) == engine.describe("tiny-sd15", red)
    again = engine.describe("tiny-sd15", red, offset=1)
    assert again != engine.describe("tiny-sd15", red)  # 🔄: the next-best phrases
    others = {tuple(engine.describe("tiny-sd15", _picture(256, 256, (c, 255 - c, c // 2)))) for c in (0, 90, 180)}
    assert len(others) > 1  # the image embedding changes the ranking


def test_aspect_rounds_to_a_common_ratio() -> None:
    assert aspect_of(1024, 1024) == "1:1"
    assert aspect_of(1920, 1080) == "16:9"
    assert aspect_of(1000, 1490) == "2:3"


def test_a_model_without_describer_is_refused(engine: Engine, registry: Registry) -> None:
    with pytest.raises(InvalidInput, match="no describer"):
        engine.describe("tiny-sdxl-turbo", _picture(64, 64, (1, 2, 3)))


@pytest.mark.slow
def test_console_describe_prints_json(
    clean_env: None,
    data_dir: Path,
    model_cache: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (data_dir / "models").symlink_to(model_cache, target_is_directory=True)
    monkeypatch.setenv("IMPASTO_DATA_DIR", str(data_dir))
    source = data_dir / "photo.png"
    source.write_bytes(_picture(200, 300, (30, 120, 200)))
    assert main(["describe", str(source), "--json", "--model", "tiny-sdxl"]) == 0
    prompts = json.loads(capsys.readouterr().out)["prompts"]
    assert len(prompts) == 4
    assert all(p.endswith("--ar 2:3") for p in prompts)
    assert main(["describe", str(source), "--model", "tiny-sdxl"]) == 0
    assert capsys.readouterr().out.splitlines()[0].startswith("1️⃣ ")
    assert main(["describe", str(data_dir / "missing.png")]) == 1
    assert "is not a file" in capsys.readouterr().err
