"""``tests/load_both.py`` run tiny (4 users, 16 commands and presses, 1 worker), to keep the load script from
rotting: both bots and the worker start as processes, every user is answered, no result is lost or posted twice."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from load_both import TEST_REDIS_URL, run

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


async def test_the_load_script_runs_on_both_platforms(capsys: pytest.CaptureFixture[str]) -> None:
    figures = await run(4, 16, 1, TEST_REDIS_URL, think_s=0.2)
    printed = capsys.readouterr().out
    assert "interaction → ack (discord)" in printed
    assert "interaction → ack (telegram)" in printed
    assert figures["acks"]["discord"]
    assert figures["acks"]["telegram"]
    assert figures["admitted"]
    assert figures["lost"] == []
    assert figures["twice"] == []
    assert [k for k in figures["errors"] if "refused" not in k] == []  # refusals (flood limits) are answers
    assert set(figures["rss"]) == {"worker0", "telegram", "discord"}
    assert all(n == 0 for n in figures["tracebacks"].values()), figures["tracebacks"]
