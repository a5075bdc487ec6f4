"""``impasto worker``: run one GPU worker (one process per GPU) that consumes the Redis queue.

Torch is imported only when the engine renderer is built, inside the worker's start-up.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from impasto.bots.config import Settings


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "worker",
        help="run a GPU worker on the Redis queue (one process per GPU)",
        description=(
            "Consume the impasto queue (IMPASTO_REDIS_URL) and render jobs from the database (IMPASTO_DATABASE_URL) "
            "into the image store (IMPASTO_DATA_DIR). Start one per GPU, e.g. with CUDA_VISIBLE_DEVICES=N. "
            "Timeouts and the worker name come from IMPASTO_WORKER_* (see README)."
        ),
    )
    p.add_argument(
        "--renderer",
        choices=["engine", "noop"],
        default="engine",
        help="engine: diffusers on the GPU (default); noop: flat tiles without torch, to smoke-test a deployment",
    )
    p.add_argument("--model", default=None, help="model to load at start-up (default: IMPASTO_DEFAULT_MODEL)")
    p.add_argument("--name", default=None, help="this worker's name in job rows (default: IMPASTO_WORKER_NAME)")
    p.add_argument("--burst", action="store_true", help="exit once the queue is empty")
    p.add_argument("--noop-steps", type=int, default=4, help="noop renderer: steps per job")
    p.add_argument("--noop-step-s", type=float, default=0.0, help="noop renderer: seconds per step")
    p.add_argument(
        "--noop-hang-s",
        type=float,
        default=0.0,
        help="noop renderer: block this long before the first step, as a wedged GPU call would (to test recovery)",
    )
    p.set_defaults(handler=run_worker)


def run_worker(args: argparse.Namespace) -> int:
    from impasto.queue.renderer import EngineRenderer, NoopRenderer, Renderer
    from impasto.queue.screening import Classifier
    from impasto.queue.settings import WorkerConfig
    from impasto.queue.worker import WorkerSetup, build_worker
    from impasto.storage.images import ImageStore

    settings = Settings()  # type: ignore[call-arg]  # pydantic-settings fills fields from the environment
    if not settings.redis_url:
        print(
            "IMPASTO_REDIS_URL is not set: the worker consumes the Redis queue (e.g. redis://127.0.0.1:6379/0)",
            file=sys.stderr,
        )
        return 2
    overrides: dict[str, Any] = {"name": args.name} if args.name else {}
    config = WorkerConfig(**overrides)
    from impasto.queue.served import check_models, parse_models

    served = parse_models(config.models)
    try:
        if served:
            check_models(served, settings.registry.names())
    except ValueError as exc:
        print(f"impasto worker: {exc}", file=sys.stderr)
        return 2
    if served and args.model and args.model not in served:
        print(
            f"impasto worker: --model {args.model} is not among IMPASTO_WORKER_MODELS ({', '.join(served)})",
            file=sys.stderr,
        )
        return 2
    # A worker that serves named models loads the first of them at start-up, never the registry default.
    first_model = args.model or (served[0] if served else None) or settings.default_model
    if args.renderer == "engine" and not settings.model_downloads:
        from impasto.bots.console.models import downloads_refused
        from impasto.engine.registry import RegistryError

        name = first_model or settings.registry.default
        try:
            refusal = downloads_refused(settings.registry.get(name), settings.data_dir / "models")
        except RegistryError as exc:
            refusal = str(exc)
        if refusal is not None:
            print(f"impasto worker: {refusal}", file=sys.stderr)
            return 2

    def renderer() -> Renderer:
        if args.renderer == "noop":
            return NoopRenderer(steps=args.noop_steps, step_s=args.noop_step_s, hang_s=args.noop_hang_s)
        return EngineRenderer.load(
            settings.registry,
            cache_dir=settings.data_dir / "models",
            lora_dir=settings.lora_dir_or_default,
            model=first_model,
            memory_budget_bytes=settings.model_cache_budget,
        )

    from impasto.bots.ops.logs import configure_logging, secrets_of

    try:
        configure_logging(secrets=secrets_of(settings))
    except ValueError as exc:  # a bad IMPASTO_LOG_FORMAT
        print(f"impasto worker: {exc}", file=sys.stderr)
        return 2
    from impasto.engine.nsfw import NONE, NsfwConfig
    from impasto.queue.moderation.matching import PolicyError

    nsfw = NsfwConfig()

    def classifier() -> Classifier | None:
        from impasto.engine.nsfw import load_classifier

        return load_classifier(nsfw.model, settings.data_dir / "models")

    try:
        policy = settings.moderation_policy
    except PolicyError as exc:
        print(f"impasto worker: {exc}", file=sys.stderr)
        return 2
    setup = WorkerSetup(
        config=config,
        database_url=settings.database_url_or_default,
        image_root=ImageStore.in_data_dir(settings.data_dir).root,
        image_remote=settings.image_remote(),
        renderer_factory=renderer,
        classifier_factory=classifier if nsfw.model != NONE else None,
        nsfw_threshold=nsfw.threshold,
        policy=policy,
    )
    from impasto.bots.ops.worker_ops import start_worker_ops
    from impasto.queue.metrics import instrument
    from impasto.queue.served import announce, serve_only
    from impasto.storage.db import DatabaseError

    worker = serve_only(instrument(build_worker(setup, redis_url=settings.redis_url, burst=args.burst)), served)
    announce(worker, name=config.name, models=served, ns=config.ns)
    try:
        ops = start_worker_ops(worker, settings)
    except ValueError as exc:  # a bad IMPASTO_METRICS_PORT, or the port is taken
        print(f"impasto worker: operator port: {exc}", file=sys.stderr)
        return 2
    try:
        worker.run()
    except DatabaseError as exc:
        print(exc, file=sys.stderr)
        return 2
    finally:
        ops.close()
    return 0
