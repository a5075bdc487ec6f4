"""The console through the queue: `impasto imagine`, `upscale JOB N`, `vary JOB:N --strong`, `info`, `history`,
each a real `impasto` process, with a real worker process painting flat tiles."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from queue_helpers import TEST_REDIS_URL, Stack


@pytest.fixture
def console_env(stack: Stack, data_dir: Path) -> Iterator[dict[str, str]]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("IMPASTO_")},
        "IMPASTO_REDIS_URL": TEST_REDIS_URL,
        "IMPASTO_QUEUE_NAMESPACE": stack.ns.prefix,
        "IMPASTO_DATABASE_URL": stack.db_url,
        "IMPASTO_DATA_DIR": str(data_dir),
        "IMPASTO_DEFAULT_MODEL": "tiny-sd15",
        "IMPASTO_WORKER_POLL_DELAY_S": "0.05",
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "impasto.bots", "worker", "--renderer", "noop"], env=env, stderr=subprocess.DEVNULL
    )
    try:
        yield env
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)


def _impasto(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "impasto.bots", *args], env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.slow
def test_imagine_then_upscale_and_vary_by_job_id(console_env: dict[str, str], data_dir: Path) -> None:
    out = data_dir / "out"
    made = _impasto(console_env, "imagine", "a lighthouse at dusk", "--out", str(out))
    assert made.returncode == 0, made.stderr
    job_id = re.search(r"job ([\w-]+):", made.stdout)
    assert job_id is not None, made.stdout
    grid = out / f"{job_id[1]}-grid.png"
    assert grid.read_bytes().startswith(b"\x89PNG")
    assert "NOISE" in made.stderr  # the tiny model says what it paints

    picked = _impasto(console_env, "upscale", job_id[1], "2", "--out", str(out))
    assert picked.returncode == 0, picked.stderr
    assert "-1.png" in picked.stdout

    varied = _impasto(console_env, "vary", f"{job_id[1]}:3", "--strong", "--out", str(out))
    assert varied.returncode == 0, varied.stderr
    assert "-grid.png" in varied.stdout

    history = _impasto(console_env, "history", "lighthouse")
    assert history.returncode == 0, history.stderr
    assert job_id[1] in history.stdout
    # Actions by name, never by wire code ("vt", "u"): U3 then Vary (Strong) on it.
    assert "Vary (Strong)" in history.stdout
    assert "U3" in history.stdout
    assert " vt " not in history.stdout
    info = _impasto(console_env, "info")
    assert info.returncode == 0, info.stderr
    assert "Plan:" in info.stdout
    assert "Running jobs:      none" in info.stdout


def test_an_unknown_job_id_is_refused_by_name(console_env: dict[str, str]) -> None:
    made = _impasto(console_env, "upscale", "nosuchjob1")
    assert made.returncode == 2
    assert "nosuchjob1" in made.stderr
