"""The worker's knobs (``IMPASTO_WORKER_…``), and the arq ``Worker`` built from them.

Timeouts, converted once here (STYLE 2): a job that *waited* longer than ``max_wait_s`` is failed and refunded when a
worker reaches it; a *running* job that reports no step for ``step_timeout_s`` is stopped and failed (the clock
resets on every step); ``max_run_s`` caps a whole render. Every ``sweep_interval_s`` one worker also sweeps for what
no worker would reach (``queue.sweep``): jobs past ``max_wait_s`` that nobody started, running jobs nobody holds,
released jobs missing from Redis, and held jobs whose user has room.

``lease_s`` is how long arq's in-progress lock outlives a worker that died: the live worker renews it every
``lease_s / 3``, so a job of a SIGKILLed worker is picked up by another one about ``lease_s`` later.
"""

from __future__ import annotations

import socket

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from impasto.queue import keys


class WorkerConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="IMPASTO_WORKER_", env_file=".env", extra="ignore")

    name: str = Field(default_factory=lambda: f"{socket.gethostname()}-gpu0")
    # The Redis key prefix of the queue this worker consumes (keys.Namespace): IMPASTO_QUEUE_NAMESPACE, the same
    # variable the bots and the console read, so that they all agree.
    namespace: str = Field(
        default=keys.PREFIX, min_length=1, validation_alias=AliasChoices("namespace", keys.NAMESPACE_ENV)
    )
    # IMPASTO_WORKER_MODELS: the registry models this worker serves ("v6,niji6"); empty: all (``queue.served``).
    models: str = ""
    max_wait_s: float = Field(default=3600.0, gt=0)
    sweep_interval_s: float = Field(default=15.0, ge=0)  # 0: this worker never sweeps
    # IMPASTO_MODERATION_RETENTION_DAYS (the bots read it too): the sweep empties the evidence (prompts, matched words)
    # of moderation audit rows older than this, once an hour.
    moderation_retention_days: int = Field(
        default=30,
        ge=1,
        validation_alias=AliasChoices("moderation_retention_days", "IMPASTO_MODERATION_RETENTION_DAYS"),
    )
    # Exit (status 75) when the GPU thread is wedged, for the supervisor to restart the worker. Off only where the
    # worker runs inside another program that must not exit (tests, the service benchmark).
    exit_when_wedged: bool = True
    step_timeout_s: float = Field(default=120.0, gt=0)
    max_run_s: float = Field(default=1800.0, gt=0)
    lease_s: float = Field(default=30.0, gt=0)
    cancel_poll_s: float = Field(default=1.0, gt=0)  # how often a running job asks SQL whether its owner cancelled it
    preview_interval_s: float = Field(default=1.0, ge=0)  # at most one preview event per job per interval
    preview_px: int = Field(default=128, ge=16, le=512)  # the longest side of a preview PNG
    # How often an idle worker polls the queue when nothing wakes it (``client.enqueue`` pushes to
    # ``keys.Namespace.wake``); a busy worker looks for its next job as soon as one ends.
    poll_delay_s: float = Field(default=0.05, gt=0)
    positions_announced: int = Field(default=25, ge=0)  # waiting jobs told their new position when a job starts
    positions_interval_s: float = Field(default=1.0, ge=0)  # ... at most this often (0: at every start)
    max_tries: int = Field(default=5, ge=1)  # deliveries of one job (crash retries) before arq gives up
    # On SIGTERM, let the running job finish for up to this long (then it is stopped and re-run elsewhere).
    shutdown_wait_s: int = Field(default=50, ge=0)

    @property
    def ns(self) -> keys.Namespace:
        return keys.Namespace(self.namespace)
