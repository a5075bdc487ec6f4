"""The operator port's setting: a bad value or a taken port is one line naming IMPASTO_METRICS_PORT."""

from __future__ import annotations

import socket

import pytest

from impasto.bots.ops.health import port_from_env, start_ops


def test_the_port_setting() -> None:
    assert port_from_env({}) is None
    assert port_from_env({"IMPASTO_METRICS_PORT": " 9100 "}) == 9100
    for bad in ("http", "70000", "-1"):
        with pytest.raises(ValueError, match=r"IMPASTO_METRICS_PORT=.*: use a TCP port number \(0–65535\)"):
            port_from_env({"IMPASTO_METRICS_PORT": bad})


async def test_a_taken_port_is_named() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ValueError, match=rf"^IMPASTO_METRICS_PORT={port}: cannot listen on 127.0.0.1:{port} \("):
            await start_ops(port, checks={}, host="127.0.0.1")


def test_a_refusal_is_counted_by_its_class() -> None:
    from prometheus_client import REGISTRY

    from impasto.queue import metrics

    class CreditsExhausted(Exception):
        pass

    def count() -> float:
        return REGISTRY.get_sample_value("impasto_refusals_total", {"reason": "credits_exhausted"}) or 0.0

    before = count()
    metrics.refused_by(CreditsExhausted("no fast time left"))
    assert count() == before + 1
