"""A worker on one host stores a job's images in the shared bucket; another host's store reads them from there. A
bucket that refuses fails the job with a refund, as a full disk does. moto's in-process S3: nothing leaves."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from queue_helpers import TEST_REDIS_URL, Stack

from impasto.bots.service.requester import Requester
from impasto.queue.worker import build_worker
from impasto.storage.images import ImageStore
from impasto.storage.s3 import S3Bucket

HAL = Requester(platform="discord", user_id="9010", display_name="hal", guild_id="g9")
BUCKET = "impasto-worker-test"


@pytest.fixture
def bucket(monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Bucket]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=BUCKET)
        yield S3Bucket(BUCKET, region="us-east-1")


async def _drain(stack: Stack, *, image_root: Path, remote: S3Bucket) -> None:
    setup = dataclasses.replace(stack.setup(), image_root=image_root, image_remote=remote)
    worker = build_worker(setup, redis_url=TEST_REDIS_URL, burst=True, handle_signals=False)
    try:
        await worker.main()
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            await worker.close()


async def test_a_gpu_hosts_images_reach_a_bot_host_through_the_bucket(
    stack: Stack, bucket: S3Bucket, tmp_path: Path
) -> None:
    [ticket] = await stack.service.imagine(HAL, "a lantern", idempotency_key="s3-1")
    await _drain(stack, image_root=tmp_path / "gpu-host" / "images", remote=bucket)
    view = await stack.service.job(ticket.job_id)
    assert view.status == "done"
    bot_host = ImageStore(tmp_path / "bot-host" / "images", remote=bucket)
    for index in range(5):  # the grid and the four singles
        image = view.image(index)
        assert image is not None
        assert not bot_host.path(image.key).exists()
        assert bot_host.get(image.key).startswith(b"\x89PNG")


async def test_a_bucket_that_refuses_fails_the_job_with_a_refund(
    stack: Stack, tmp_path: Path, bucket: S3Bucket
) -> None:
    [ticket] = await stack.service.imagine(HAL, "a lantern", idempotency_key="s3-2")
    await _drain(stack, image_root=tmp_path / "images", remote=S3Bucket("no-such-bucket", region="us-east-1"))
    view = await stack.service.job(ticket.job_id)
    assert view.status == "failed"
    assert view.error == "the server could not save the images; nothing was charged"
    assert view.charged_gpu_seconds == 0
