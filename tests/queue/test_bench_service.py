"""``impasto bench-service`` runs its whole path (admission, queue, worker, settlement, events) and prints its
figures: a smoke test that keeps the benchmark working. The figures themselves are not checked (no timed tests)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from queue_helpers import TEST_REDIS_URL

from impasto.queue import keys


def test_bench_service_drains_its_jobs_and_prints_its_figures(ns: keys.Namespace) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMPASTO_")}
    env[keys.NAMESPACE_ENV] = ns.prefix  # its own queue: other test sessions share this Redis
    args = ["bench-service", "--jobs", "12", "--idle-jobs", "3", "--redis-url", TEST_REDIS_URL]
    done = subprocess.run(
        [sys.executable, "-m", "impasto.bots", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert re.search(r"idle  \(one job at a time\): enqueue→start: p50 [\d.]+ ms, p99 [\d.]+ ms", out), out
    assert re.search(r"burst: drained in [\d.]+ s = [\d.]+ jobs/s through one worker", out), out
    statements = re.search(r"burst: ([\d.]+) SQL statements per job", out)
    assert statements is not None, out
    # A settled job is claimed and finished in SQL: never zero, and about seven (a count far off means a lost seam).
    assert 3 <= float(statements.group(1)) <= 15, out
