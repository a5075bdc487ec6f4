"""Small helpers shared by the language tests."""

from __future__ import annotations

import pytest

from impasto.bots.language.errors import PromptError
from impasto.bots.language.job import Job
from impasto.bots.language.parser import parse_imagine
from impasto.bots.language.prefs import Preferences
from impasto.engine.registry import Registry


def one(text: str, registry: Registry, preferences: Preferences | None = None) -> Job:
    jobs = parse_imagine(text, registry=registry, preferences=preferences)
    assert len(jobs) == 1, [j.display for j in jobs]
    return jobs[0]


def refused(text: str, registry: Registry, preferences: Preferences | None = None, **kwargs: int) -> PromptError:
    with pytest.raises(PromptError) as info:
        parse_imagine(text, registry=registry, preferences=preferences, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    assert message == info.value.message
    return info.value
