"""``impasto bench`` with the tiny models on the CPU at 2 steps: it runs and reports every figure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from impasto.bots.cli import main

pytestmark = pytest.mark.slow


def test_bench_reports_grid_upscale_plain_ratio_and_memory(
    clean_env: None,
    data_dir: Path,
    model_cache: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (data_dir / "models").symlink_to(model_cache, target_is_directory=True)
    monkeypatch.setenv("IMPASTO_DATA_DIR", str(data_dir))
    out = data_dir / "bench.json"
    assert main(["bench", "--steps", "2", "--runs", "1", "--device", "cpu", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "tiny-sd15 256x256 2 steps on cpu: grid" in text
    assert "plain diffusers" in text
    rows = json.loads(out.read_text())
    assert [r["model"] for r in rows] == ["tiny-sd15", "tiny-sdxl"]
    for row in rows:
        assert row["grid_s"] > 0
        assert row["plain_grid_s"] > 0
        assert row["upscale_s"] > 0
        assert row["peak_bytes"] > 0
        assert row["compute_fraction"] is None  # only for the real architectures on a GPU
