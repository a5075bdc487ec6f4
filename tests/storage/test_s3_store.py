"""The image store over an S3-compatible bucket (moto's in-process S3, nothing leaves the machine): two hosts with
their own local folders share images through the bucket; failures of the bucket are OSError, as a disk's would be."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ResponseStreamingError
from moto import mock_aws

from impasto.bots.config import Settings
from impasto.storage.images import ImageStore
from impasto.storage.s3 import S3Bucket

BUCKET = "impasto-test"
PNG = b"\x89PNG\r\n\x1a\n" + b"pixels" * 100


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def host(tmp_path: Path, name: str) -> ImageStore:
    """One host's store: its own local folder, the shared bucket (a boto3 client built from the settings)."""
    return ImageStore(tmp_path / name / "images", remote=S3Bucket(BUCKET, prefix="impasto/", region="us-east-1"))


def test_an_image_put_on_one_host_is_read_on_another(s3: Any, tmp_path: Path) -> None:
    gpu, bot = host(tmp_path, "gpu"), host(tmp_path, "bot")
    key = gpu.put(PNG)
    assert key == f"{hashlib.sha256(PNG).hexdigest()}.png"
    stored = s3.get_object(Bucket=BUCKET, Key=f"impasto/{key}")
    assert stored["Body"].read() == PNG
    assert stored["ContentType"] == "image/png"
    assert not bot.path(key).exists()
    assert bot.exists(key)  # in the bucket
    assert bot.get(key) == PNG
    assert bot.path(key).read_bytes() == PNG  # kept on this host: the next read is the disk's
    s3.delete_object(Bucket=BUCKET, Key=f"impasto/{key}")
    assert bot.get(key) == PNG


def test_local_file_downloads_once_for_code_that_serves_files(s3: Any, tmp_path: Path) -> None:
    gpu, web = host(tmp_path, "gpu"), host(tmp_path, "web")
    key = gpu.put(PNG)
    path = web.local_file(key)
    assert path == web.path(key)
    assert path.read_bytes() == PNG
    missing = "0" * 64 + ".png"
    assert web.local_file(missing) is None
    assert not web.exists(missing)
    with pytest.raises(FileNotFoundError):
        web.get(missing)


def test_putting_the_same_bytes_again_uploads_nothing(s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = host(tmp_path, "a"), host(tmp_path, "b")
    key = first.put(PNG)
    assert second.remote is not None
    uploads: list[str] = []
    monkeypatch.setattr(second.remote, "upload", lambda k, data: uploads.append(k))
    assert second.put(PNG) == key  # a retried worker on another host: same key, nothing sent again
    assert uploads == []
    assert second.path(key).read_bytes() == PNG


def test_delete_removes_the_object_and_this_hosts_copy(s3: Any, tmp_path: Path) -> None:
    gpu, bot = host(tmp_path, "gpu"), host(tmp_path, "bot")
    key = gpu.put(PNG)
    assert bot.delete(key) is True  # only in the bucket, as far as this host knows
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET)
    assert gpu.delete(key) is True  # its own copy
    assert not gpu.path(key).exists()
    assert gpu.delete(key) is False
    assert not bot.exists(key)


def test_a_bucket_that_fails_is_an_os_error(s3: Any, tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "images", remote=S3Bucket("no-such-bucket", region="us-east-1"))
    with pytest.raises(OSError, match=r"s3://no-such-bucket/: (head|put) "):
        store.put(PNG)
    assert not any((tmp_path / "images").rglob("*.png"))  # nothing handed out that other hosts cannot read


class _BrokenBody:
    """An object's body whose download breaks half-way (the connection reset)."""

    def __init__(self) -> None:
        self.closed = False

    def read(self) -> bytes:
        raise ResponseStreamingError(error="connection reset by peer")

    def close(self) -> None:
        self.closed = True


def test_a_download_that_breaks_while_reading_is_an_os_error(
    s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The answer's body is read after ``get_object`` returned: its failure is the bucket's too (an OSError, which
    the worker fails and refunds on and delivery posts around), and the body is closed."""
    gpu, bot = host(tmp_path, "gpu"), host(tmp_path, "bot")
    key = gpu.put(PNG)
    assert bot.remote is not None
    body = _BrokenBody()
    monkeypatch.setattr(bot.remote.client, "get_object", lambda **params: {"Body": body})  # type: ignore[attr-defined]
    with pytest.raises(OSError, match=rf"s3://{BUCKET}/impasto/: get {key}: "):
        bot.get(key)
    assert body.closed
    assert not bot.path(key).exists()


def test_settings_build_the_bucket_or_leave_the_local_store(
    clean_env: None, s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMPASTO_DATA_DIR", str(tmp_path))
    plain = Settings(_env_file=None).image_store()  # type: ignore[call-arg]
    assert plain.remote is None
    assert plain.root == tmp_path / "images"
    monkeypatch.setenv("IMPASTO_S3_BUCKET", BUCKET)
    monkeypatch.setenv("IMPASTO_S3_PREFIX", "prod/")
    monkeypatch.setenv("IMPASTO_S3_ENDPOINT_URL", "http://minio.lan:9000")
    monkeypatch.setenv("IMPASTO_S3_REGION", "eu-west-1")
    store = Settings(_env_file=None).image_store()  # type: ignore[call-arg]
    assert isinstance(store.remote, S3Bucket)
    assert (store.remote.bucket, store.remote.prefix) == (BUCKET, "prod/")
    assert store.remote.client.meta.endpoint_url == "http://minio.lan:9000"
    assert store.remote.client.meta.region_name == "eu-west-1"
