"""A worker's budget of resident models comes from its device's memory, less a margin for rendering; the operator's
IMPASTO_MODEL_CACHE_BYTES overrides it; the chosen budget is logged. The device's size is monkeypatched."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from pydantic import ValidationError

from impasto.bots.config import Settings, parse_byte_size
from impasto.engine import loading
from impasto.engine.loading import GIB, ModelCache, default_memory_budget
from impasto.engine.registry import load_registry


def _gpu_of(monkeypatch: pytest.MonkeyPatch, total: int) -> None:
    def properties(device: object) -> SimpleNamespace:
        assert torch.device(device).type == "cuda"  # type: ignore[call-overload]
        return SimpleNamespace(total_memory=total)

    monkeypatch.setattr(torch.cuda, "get_device_properties", properties)


@pytest.mark.parametrize(
    ("total_gib", "budget_gib"),
    [(24, 16), (80, 64), (141, 141 - 141 * 0.2), (12, 4), (6, 0)],
)
def test_a_gpu_keeps_its_memory_less_a_margin(
    monkeypatch: pytest.MonkeyPatch, total_gib: int, budget_gib: float
) -> None:
    _gpu_of(monkeypatch, total_gib * GIB)
    assert default_memory_budget(torch.device("cuda")) == pytest.approx(budget_gib * GIB, abs=1)


@pytest.mark.parametrize(("ram_gib", "budget_gib"), [(32, 24), (8, 4), (128, 96), (3, 0)])
def test_the_cpu_keeps_the_ram_less_a_margin(monkeypatch: pytest.MonkeyPatch, ram_gib: int, budget_gib: int) -> None:
    monkeypatch.setattr(loading, "system_memory_bytes", lambda: ram_gib * GIB)
    assert default_memory_budget(torch.device("cpu")) == budget_gib * GIB


def test_the_cache_takes_the_device_default_and_logs_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _gpu_of(monkeypatch, 24 * GIB)
    registry = load_registry(None, "tiny-sdxl")
    with caplog.at_level(logging.INFO, logger="impasto.engine"):
        cache = ModelCache(registry, device=torch.device("cuda"), dtype=torch.bfloat16, cache_dir=tmp_path)
    assert cache.memory_budget_bytes == 16 * GIB
    [line] = [r.getMessage() for r in caplog.records if "model cache budget" in r.getMessage()]
    for said in ("16.0 GiB", "24.0 GiB", "IMPASTO_MODEL_CACHE_BYTES"):
        assert said in line


def test_the_operator_sets_the_budget(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("IMPASTO_MODEL_CACHE_BYTES", "10GiB")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.model_cache_budget == 10 * GIB
    monkeypatch.setattr(loading, "system_memory_bytes", lambda: pytest.fail("the operator's figure is taken as is"))
    with caplog.at_level(logging.INFO, logger="impasto.engine"):
        cache = ModelCache(
            load_registry(None, "tiny-sdxl"),
            device=torch.device("cpu"),
            dtype=torch.float32,
            cache_dir=tmp_path,
            memory_budget_bytes=settings.model_cache_budget,
        )
    assert cache.memory_budget_bytes == 10 * GIB
    assert any("10.0 GiB" in r.getMessage() and "operator" in r.getMessage() for r in caplog.records)


def test_unset_or_empty_means_the_device_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IMPASTO_MODEL_CACHE_BYTES", raising=False)
    assert Settings(_env_file=None).model_cache_budget is None  # type: ignore[call-arg]
    monkeypatch.setenv("IMPASTO_MODEL_CACHE_BYTES", "")  # compose's ${IMPASTO_MODEL_CACHE_BYTES:-}
    assert Settings(_env_file=None).model_cache_budget is None  # type: ignore[call-arg]


def test_a_bad_size_is_a_start_up_error_naming_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMPASTO_MODEL_CACHE_BYTES", "lots")
    with pytest.raises(ValidationError, match="model_cache_bytes"):
        Settings(_env_file=None)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("25769803776", 24 * GIB),
        ("24GiB", 24 * GIB),
        ("24G", 24 * 10**9),
        ("8000MB", 8 * 10**9),
        ("512 mib", 512 << 20),
    ],
)
def test_sizes_read_with_or_without_a_unit(text: str, size: int) -> None:
    assert parse_byte_size(text) == size
