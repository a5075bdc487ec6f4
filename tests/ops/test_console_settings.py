"""The processes refuse bad operations settings with one line, before connecting to anything."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from impasto.bots.cli import main


def _impasto(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("IMPASTO_")}
    return subprocess.run(
        [sys.executable, "-m", "impasto.bots", *args], env={**clean, **env}, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"IMPASTO_LOG_FORMAT": "xml"}, "IMPASTO_LOG_FORMAT='xml': use json or console"),
        ({"IMPASTO_METRICS_PORT": "http"}, "IMPASTO_METRICS_PORT='http': use a TCP port number (0–65535)"),
        ({"IMPASTO_WORKER_MODELS": "v6,v99"}, "IMPASTO_WORKER_MODELS names v99, not in the model registry"),
    ],
)
def test_the_worker_names_a_bad_setting(env: dict[str, str], message: str) -> None:
    done = _impasto({"IMPASTO_REDIS_URL": "redis://127.0.0.1:1/0", **env}, "worker", "--renderer", "noop")
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("args", "status", "says"),
    [
        (["explain", "a cat"], 1, "impasto explain: configuration error: "),
        (["translate", "a cat"], 1, "impasto translate: configuration error: "),
        (["models", "list"], 2, "impasto models: "),
    ],
)
def test_the_registry_commands_name_a_missing_model_registry_in_one_line(
    args: list[str],
    status: int,
    says: str,
    clean_env: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    missing = tmp_path / "nowhere.toml"
    assert main([*args, "--model-registry", str(missing)]) == status
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"{says}model registry {missing} does not exist (set IMPASTO_MODELS)\n"


def test_translate_names_a_model_the_registry_lacks_in_one_line(
    clean_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["translate", "--model", "v99", "a cat"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("impasto translate: configuration error: ")
    assert "v99" in captured.err
    assert captured.err.count("\n") == 1
