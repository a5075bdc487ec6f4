"""Shared test fixtures: the real Redis and PostgreSQL on this machine, and a scratch data directory.

Override the servers with IMPASTO_TEST_REDIS_URL / IMPASTO_TEST_POSTGRES_URL (an admin URL that may create databases).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

TEST_REDIS_URL = os.environ.get("IMPASTO_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
TEST_POSTGRES_URL = os.environ.get("IMPASTO_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "impasto-data"
    path.mkdir()
    return path


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests must not depend on the developer's IMPASTO_* environment."""
    for key in list(os.environ):
        if key.startswith("IMPASTO_") and not key.startswith("IMPASTO_TEST_"):
            monkeypatch.delenv(key)
