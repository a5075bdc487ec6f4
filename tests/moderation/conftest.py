"""Fixtures for moderation: the shipped policy, compiled once per test session (it is immutable once loaded)."""

from __future__ import annotations

import pytest

from impasto.queue.moderation.policy import Policy, load_policy


@pytest.fixture(scope="session")
def policy() -> Policy:
    return load_policy()
