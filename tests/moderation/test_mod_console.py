"""`impasto mod`: check (text, --json, --file, --guild), log, ban, unban and purge, on a SQLite data directory."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from impasto.bots.cli import main
from impasto.storage import moderation as mod
from impasto.storage.db import make_engine, session_factory


@pytest.fixture(autouse=True)
def isolated(clean_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # no stray .env
    data = tmp_path / "data"
    monkeypatch.setenv("IMPASTO_DATA_DIR", str(data))
    return data


def test_check_exit_codes_and_the_operator_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["mod", "check", "a lighthouse --no nude, gore"]) == 0
    assert capsys.readouterr().out.strip() == "allowed"
    assert main(["mod", "check", "--json", "a n.u.d.e figure"]) == 2
    assert json.loads(capsys.readouterr().out) == {
        "allowed": False,
        "category": "sexual",
        "rule": "word",
        "matched": "nude",
    }
    assert main(["mod", "check", "--channel-nsfw", "--json", "a nude figure"]) == 0
    assert json.loads(capsys.readouterr().out)["allowed"] is True
    assert main(["mod", "check", "--nsfw", "a nude child"]) == 2
    out = capsys.readouterr().out
    assert out.startswith("this prompt was refused: sexual content involving minors is never allowed")
    assert "rule: combination" in out


def test_check_a_file_prints_counts_and_the_median_time(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a lighthouse\n\nsuicide forest\na cat --ar 16:9\n", "utf-8")
    assert main(["mod", "check", "--file", str(prompts)]) == 2
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "refused (self_harm): suicide forest"
    assert out[1].startswith("3 prompts: 2 allowed, 1 refused; median ")
    assert out[1].endswith(" µs per prompt")


def test_check_needs_text_or_a_file_and_a_well_formed_guild(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["mod", "check"]) == 2
    assert "give the prompt TEXT or --file FILE" in capsys.readouterr().err
    assert main(["mod", "check", "--guild", "slack:1", "cat"]) == 2
    assert "write discord:ID or telegram:ID" in capsys.readouterr().err


def test_an_operator_policy_file_that_is_broken_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "policy.toml"
    bad.write_text("version = 1\n[categories.x]\ndefault = 'sometimes'\n", "utf-8")
    monkeypatch.setenv("IMPASTO_MODERATION", str(bad))
    assert main(["mod", "check", "cat"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "default = 'sometimes'; use one of block, nsfw, allow" in err


def test_guild_rules_ban_log_unban_purge(isolated: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["mod", "log"]) == 2  # no schema yet: one line that says what to run
    assert "impasto db upgrade" in capsys.readouterr().err
    assert main(["db", "upgrade"]) == 0

    async def add_clown() -> None:
        engine = make_engine(f"sqlite:///{isolated / 'impasto.db'}")
        try:
            async with session_factory(engine)() as session, session.begin():
                guild = await mod.guild_id_for(session, "discord", "77")
                await mod.add_word(session, guild, "custom", "clown")
        finally:
            await engine.dispose()

    asyncio.run(add_clown())
    capsys.readouterr()
    assert main(["mod", "check", "--guild", "discord:77", "a sad clown"]) == 2
    assert main(["mod", "check", "--guild", "discord:78", "a sad clown"]) == 0
    assert main(["mod", "ban", "telegram:5", "--reason", "spam", "--duration", "12h"]) == 0
    assert "banned telegram:5 everywhere until " in capsys.readouterr().out
    assert main(["mod", "ban", "telegram:5", "--duration", "12 hours"]) == 2
    assert "duration '12 hours': write a number and s, m, h, d or w" in capsys.readouterr().err
    assert main(["mod", "unban", "telegram:5"]) == 0
    assert capsys.readouterr().out.strip() == "lifted 1 ban(s) of telegram:5"
    assert main(["mod", "log", "--user", "telegram:5"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[2] for line in lines] == ["unban", "ban"]
    assert "spam (until " in lines[1]
    assert main(["mod", "purge"]) == 0
    assert capsys.readouterr().out.strip() == "purged the evidence of 0 audit row(s) older than 30 days"
