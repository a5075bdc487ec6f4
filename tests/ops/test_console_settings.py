"""The processes refuse bad operations settings with one line, before connecting to anything."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


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
