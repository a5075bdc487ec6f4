"""docker-compose.yml: the services, their commands, one shared image, the start order; .env.example documents it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def test_services_and_their_commands() -> None:
    services = _compose()["services"]
    assert set(services) == {
        *("redis", "postgres", "migrate", "discord", "telegram", "web"),
        *("worker", "worker-niji", "worker-cpu"),
    }
    assert services["migrate"]["command"] == ["db", "upgrade"]
    for worker in ("worker", "worker-niji", "worker-cpu"):
        assert services[worker]["command"] == ["worker"]
    assert services["discord"]["command"] == ["discord"]
    assert services["telegram"]["command"] == ["telegram"]
    assert "--appendonly" in services["redis"]["command"]
    assert services["redis"]["command"][services["redis"]["command"].index("--appendonly") + 1] == "yes"


def test_every_impasto_service_runs_the_one_image() -> None:
    services = _compose()["services"]
    ours = [services[name] for name in ("migrate", "worker", "worker-niji", "worker-cpu", "discord", "telegram")]
    assert {s["image"] for s in ours} == {"impasto:latest"}
    dockerfiles = {s["build"]["dockerfile_inline"] for s in ours}
    assert len(dockerfiles) == 1
    [dockerfile] = dockerfiles
    assert 'ENTRYPOINT ["impasto"]' in dockerfile
    # The image copies only the package folders (no .venv, no data), all of them.
    copied = set(re.findall(r"^COPY (\w+) /app/\1$", dockerfile, re.MULTILINE))
    assert copied == {"bots", "queue", "engine", "storage", "migrations"}


def test_start_order_and_the_gpu_reservation() -> None:
    services = _compose()["services"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("worker", "worker-niji", "worker-cpu", "discord", "telegram"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert depends["redis"]["condition"] == "service_healthy"
    # A worker that exits (a wedged GPU thread: status 75) or crashes is started again; the one-shot step is not.
    for name in ("worker", "worker-niji", "worker-cpu", "discord", "telegram"):
        assert services[name]["restart"] == "unless-stopped"
    assert services["migrate"]["restart"] == "no"
    [device] = services["worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia"
    assert device["capabilities"] == ["gpu"]
    for name in ("migrate", "worker", "worker-niji", "worker-cpu", "discord", "telegram"):
        env = services[name]["environment"]
        assert env["IMPASTO_REDIS_URL"] == "redis://redis:6379/0"
        assert env["IMPASTO_DATABASE_URL"].startswith("postgresql://impasto:")
        assert env["IMPASTO_DATABASE_URL"].endswith("@postgres:5432/impasto")


def test_env_example_documents_what_compose_reads() -> None:
    example = (ROOT / ".env.example").read_text()
    compose_text = (ROOT / "docker-compose.yml").read_text()
    needed = set(re.findall(r"\$\{(\w+):\?", compose_text))
    assert needed == {"POSTGRES_PASSWORD"}
    for name in [*needed, "IMPASTO_DISCORD_TOKEN", "IMPASTO_TELEGRAM_TOKEN", "IMPASTO_WORKER_LEASE_S"]:
        assert re.search(rf"^#? ?{name}=", example, re.MULTILINE), name
