"""What operators deploy with: compose healthchecks on the operator port, a dashboard that graphs real metrics."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import REGISTRY

import impasto.queue.metrics  # noqa: F401 - registers every impasto metric

ROOT = Path(__file__).resolve().parents[2]


def _services() -> dict[str, Any]:
    services: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    return services


def test_bots_and_worker_are_health_checked_on_their_operator_port() -> None:
    services = _services()
    for name in ("worker", "worker-niji", "worker-cpu", "discord", "telegram"):
        service = services[name]
        port = service["environment"]["IMPASTO_METRICS_PORT"]
        check = " ".join(service["healthcheck"]["test"])
        assert f"http://127.0.0.1:{port}/readyz" in check, name
        assert str(port) in service["expose"]
        assert service["environment"]["IMPASTO_LOG_FORMAT"].endswith("json}")
    # A worker is ready only once its model is loaded: its start period allows a first download.
    assert services["worker"]["healthcheck"]["start_period"] == "900s"
    assert services["worker-niji"]["healthcheck"]["start_period"] == "900s"


def test_the_dashboard_graphs_only_metrics_that_exist() -> None:
    dashboard = json.loads((ROOT / "bots" / "ops" / "deploy" / "grafana-dashboard.json").read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    used = {re.sub(r"_(bucket|count|sum)$", "", name) for e in exprs for name in re.findall(r"impasto_\w+", e)}
    known = {
        sample_name
        for collector_names in REGISTRY._collector_to_names.values()  # the registry's own index of names
        for sample_name in collector_names
    }
    assert used
    assert used - known == set()
    for name in ("impasto_queue_depth", "impasto_jobs_total", "impasto_job_wait_seconds", "impasto_render_seconds"):
        assert name in used
