"""The operator port on a real worker and a bot-side process: counters move once per job, gauges read the queue,
``/readyz`` says what is down; the worker's JSON log lines carry the job they are about."""

from __future__ import annotations

import io
import json
import logging
import warnings
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from queue_helpers import TEST_REDIS_URL, Stack

from impasto.bots.ops.health import serve_process_ops
from impasto.bots.ops.logs import configure_logging
from impasto.bots.ops.worker_ops import model_check
from impasto.bots.service.requester import Requester
from impasto.queue import metrics
from impasto.queue.state import STATE_KEY
from impasto.queue.worker import build_worker

ALICE = Requester(platform="discord", user_id="1001", display_name="alice", guild_id="g1", channel_id="c1")


async def _scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"http://127.0.0.1:{port}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def _value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_a_job_moves_the_worker_counters_once_and_the_gauges_read_the_queue(stack: Stack) -> None:
    async with serve_process_ops(0, redis_url=TEST_REDIS_URL, database_url=stack.db_url, ns=stack.ns) as server:
        assert server is not None
        before = await _scrape(server.port)
        [ticket] = await stack.service.imagine(ALICE, "a lighthouse", idempotency_key="m-1")

        waiting = await _scrape(server.port)  # a bot-side process sees the job wait in its lane
        assert _value(waiting, "impasto_queue_depth", lane="fast") == 1
        assert _value(waiting, "impasto_queue_depth", lane="relax") == 0

        worker = metrics.instrument(
            build_worker(stack.setup(), redis_url=TEST_REDIS_URL, burst=True, handle_signals=False)
        )
        try:
            await worker.main()
            # A second delivery of the finished job (at-least-once): it finds the row final and counts nothing.
            ctx: dict[str, Any] = {**worker.ctx, "job_id": ticket.job_id}
            await worker.on_job_start(ctx)  # type: ignore[misc]
            await metrics.after_job_end(ctx)
        finally:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                await worker.close()
        after = await _scrape(server.port)

    def moved(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert moved("impasto_jobs_total", action="imagine", outcome="done") == 1
    assert moved("impasto_render_seconds_count", model="tiny-sd15") == 1
    assert moved("impasto_job_wait_seconds_count", model="tiny-sd15") == 1
    assert moved("impasto_gpu_seconds_total", model="tiny-sd15") > 0
    assert moved("impasto_credits_spent_total") > 0  # a fast job is charged its GPU time
    assert _value(after, "impasto_queue_depth", lane="fast") == 0


async def test_readyz_fails_while_redis_is_down_and_healthz_stays_alive(stack: Stack) -> None:
    # Port 1 on the loopback: nothing listens there, so every Redis command fails at once.
    async with serve_process_ops(0, redis_url="redis://127.0.0.1:1/0", database_url=stack.db_url) as server:
        assert server is not None
        async with httpx.AsyncClient() as client:
            ready = await client.get(f"http://127.0.0.1:{server.port}/readyz")
            alive = await client.get(f"http://127.0.0.1:{server.port}/healthz")
            scraped = await client.get(f"http://127.0.0.1:{server.port}/metrics")
    assert ready.status_code == 503
    body = ready.json()
    assert body["sql"] == "ok"
    assert body["redis"] != "ok"
    assert alive.status_code == 200
    assert scraped.status_code == 200  # the counters are served even when the queue gauges cannot be read


async def test_readyz_passes_with_redis_and_sql_and_waits_for_the_workers_model(stack: Stack) -> None:
    setup = stack.setup(sweep_interval_s=0)  # on_startup alone, without arq's main(): no Redis in ctx to sweep with
    worker = build_worker(setup, redis_url=TEST_REDIS_URL, burst=True, handle_signals=False)
    checks = {"model": model_check(worker)}
    async with serve_process_ops(
        0, redis_url=TEST_REDIS_URL, database_url=stack.db_url, ns=stack.ns, extra_checks=checks
    ) as server:
        assert server is not None
        async with httpx.AsyncClient() as client:
            loading = await client.get(f"http://127.0.0.1:{server.port}/readyz")
            await worker.on_startup(worker.ctx)  # type: ignore[misc]
            try:
                ready = await client.get(f"http://127.0.0.1:{server.port}/readyz")
            finally:
                await worker.on_shutdown(worker.ctx)  # type: ignore[misc]
    assert loading.status_code == 503
    assert loading.json() == {"sql": "ok", "redis": "ok", "model": "the worker is still loading its model"}
    assert STATE_KEY in worker.ctx
    assert (ready.status_code, ready.json()) == (200, {"sql": "ok", "redis": "ok", "model": "ok"})


async def test_the_workers_json_log_lines_for_a_job_carry_its_id(stack: Stack, log_stream: io.StringIO) -> None:
    out = log_stream  # its teardown also puts back the environment configure_logging changed
    configure_logging("json", stream=out)
    try:
        [ticket] = await stack.service.imagine(ALICE, "a red door", idempotency_key="m-2")
        worker = metrics.instrument(
            build_worker(stack.setup(), redis_url=TEST_REDIS_URL, burst=True, handle_signals=False)
        )
        try:
            await worker.main()
        finally:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                await worker.close()
    finally:
        root = logging.getLogger()
        for handler in list(root.handlers):
            if handler.get_name() == "impasto":
                root.removeHandler(handler)
        logging.captureWarnings(False)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    about_job = [line for line in lines if ticket.job_id in line["event"]]
    # arq's "→ job started" and "← job ended" lines name the job in their text; both come with it bound.
    assert len(about_job) >= 2
    assert all(line.get("job_id") == ticket.job_id for line in about_job)
    assert all((line["platform"], line["user"], line["guild"]) == ("discord", "1001", "g1") for line in about_job)
