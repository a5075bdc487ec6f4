"""``impasto imagine`` and an action on its output, inline, with the tiny model: files on disk, paths printed."""

from __future__ import annotations

from pathlib import Path

import pytest
from engine_helpers import png

from impasto.bots.cli import main
from impasto.engine.images import png_text

pytestmark = pytest.mark.slow


@pytest.fixture
def cli_env(clean_env: None, data_dir: Path, model_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (data_dir / "models").symlink_to(model_cache, target_is_directory=True)  # reuse the session's tiny models
    monkeypatch.setenv("IMPASTO_DATA_DIR", str(data_dir))
    return data_dir


def test_imagine_writes_a_grid_and_four_singles(
    cli_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code = main(
        ["imagine", "a red boat::2 fog --no people --ar 2:1 --seed 7 --q .5", "--model", "tiny-sdxl", "--out", str(out)]
    )
    assert code == 0
    captured = capsys.readouterr()
    paths = [Path(line) for line in captured.out.splitlines() if line.endswith(".png")]
    assert len(paths) == 5
    assert all(p.is_file() and p.parent == out for p in paths)
    assert paths[0].name.endswith("-grid.png")
    assert png(paths[1].read_bytes()).size == (384, 192)  # 2:1 near the tiny model's 256² pixels
    assert "seed 7" in captured.out
    assert "paints NOISE" in captured.err
    assert png_text(paths[1].read_bytes())["parameters"].startswith("a red boat::2 fog::1\nNegative prompt: people")

    code = main(["pan", str(paths[1]), "right", "--out", str(out)])
    assert code == 0
    pan_paths = [Path(line) for line in capsys.readouterr().out.splitlines() if line.endswith(".png")]
    assert len(pan_paths) == 5
    panned = pan_paths[1].read_bytes()
    assert "a red boat::2 fog::1" in png_text(panned)["parameters"]  # the prompt came from the file
    assert png(panned).size[0] > 384


def test_bad_prompt_and_unknown_model_exit_with_one_line(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["imagine", "a cat", "--model", "nope"]) == 2
    assert "unknown model 'nope'" in capsys.readouterr().err


def test_upscale_a_file_2x_and_4x_subtle_and_creative(
    cli_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from PIL import Image

    source = tmp_path / "photo.png"
    Image.new("RGB", (96, 64), (200, 120, 40)).save(source)
    out = tmp_path / "out"
    for extra, size in ((["--scale", "4"], (384, 256)), (["--creative"], (192, 128))):
        assert main(["upscale", str(source), *extra, "--model", "tiny-sd15", "--out", str(out)]) == 0
        paths = [Path(line) for line in capsys.readouterr().out.splitlines() if line.endswith(".png")]
        assert len(paths) == 1
        assert png(paths[0].read_bytes()).size == size
    with pytest.raises(SystemExit) as exited:
        main(["upscale", str(source), "--scale", "3"])
    assert exited.value.code == 2
    assert "invalid choice: 3" in capsys.readouterr().err
