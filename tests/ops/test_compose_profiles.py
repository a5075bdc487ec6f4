"""docker-compose.yml's profiles: the whole service on any machine (cpu), GPU workers with different models (gpu,
niji) that scale, every download on the data volume; the README says how to start each and what Compose it needs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKERS = ("worker", "worker-niji", "worker-cpu")


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def _default(value: str) -> str:
    """``${VAR:-default}`` → ``default`` (what compose substitutes with VAR unset)."""
    return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", value)


def test_every_worker_is_under_a_profile_and_the_base_starts_no_worker() -> None:
    services = _compose()["services"]
    assert {name: services[name]["profiles"] for name in WORKERS} == {
        "worker": ["gpu"],
        "worker-niji": ["niji"],
        "worker-cpu": ["cpu"],
    }
    # `docker compose up` alone: the stores and the migration, nothing that needs a GPU or a token.
    assert {name for name, s in services.items() if "profiles" not in s} == {"redis", "postgres", "migrate"}


def test_the_cpu_profile_runs_anywhere() -> None:
    cpu = _compose()["services"]["worker-cpu"]
    assert "deploy" not in cpu  # no NVIDIA reservation: starts on a machine without the NVIDIA runtime
    env = cpu["environment"]
    assert env["IMPASTO_DEFAULT_MODEL"] == "tiny-sdxl"
    assert env["CUDA_VISIBLE_DEVICES"] == ""
    # It serves only built-in tiny models: a job for a real model waits for a GPU worker instead of a CPU download.
    assert set(_default(env["IMPASTO_WORKER_MODELS"]).split(",")) == {"tiny-sdxl", "tiny-sd15"}
    assert "/readyz" in " ".join(cpu["healthcheck"]["test"])


def test_two_gpu_workers_serve_different_models_and_scale() -> None:
    services = _compose()["services"]
    gpu, niji = services["worker"], services["worker-niji"]
    assert _default(gpu["environment"]["IMPASTO_WORKER_MODELS"]) == ""  # every model
    assert _default(niji["environment"]["IMPASTO_WORKER_MODELS"]) == "niji6"
    devices = [s["deploy"]["resources"]["reservations"]["devices"][0] for s in (gpu, niji)]
    assert [d["driver"] for d in devices] == ["nvidia", "nvidia"]
    assert [_default(d["device_ids"][0]) for d in devices] == ["0", "1"]
    for name in WORKERS:
        # `--scale` makes replicas of one service: a fixed name would make them one worker in job rows and Redis.
        assert "IMPASTO_WORKER_NAME" not in services[name]["environment"], name
        assert "container_name" not in services[name], name


def test_every_download_lands_on_the_data_volume() -> None:
    compose = _compose()
    for name in (*WORKERS, "discord", "telegram", "web", "migrate"):
        service = compose["services"][name]
        env = service["environment"]
        assert "impasto-data:/data" in service["volumes"], name
        assert env["IMPASTO_DATA_DIR"] == "/data"
        assert env["HF_HOME"].startswith("/data/"), name  # a recreated container finds its models
    assert "impasto-data" in compose["volumes"]


def test_prometheus_finds_every_worker_service() -> None:
    prometheus = yaml.safe_load((ROOT / "bots" / "ops" / "deploy" / "prometheus.yml").read_text())
    [workers] = [job for job in prometheus["scrape_configs"] if job["job_name"] == "impasto-worker"]
    assert set(workers["dns_sd_configs"][0]["names"]) == set(WORKERS)


def test_the_readme_says_how_to_start_each_profile_and_what_compose_it_needs() -> None:
    readme = (ROOT / "README.md").read_text()
    for profile in ("cpu", "gpu", "niji", "discord", "telegram", "web"):
        assert f"--profile {profile}" in readme, profile
    assert "--scale worker=" in readme
    assert "--scale worker-cpu=" in readme
    assert re.search(r"Compose v2\.24", readme)
    for model in ("v6", "v5", "niji6"):  # each default model's download size
        assert re.search(rf"`{model}`[^\n]*\bGB\b", readme), model
