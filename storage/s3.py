"""An S3-compatible bucket behind the image store (``storage/images.py``): AWS S3, MinIO, Cloudflare R2, Ceph RGW.

The image store keeps its local folder as a cache and treats the bucket as the shared truth: ``put`` uploads an
image the bucket lacks, ``get`` on a host that never saw the image downloads it once. Keys are the store's own
content hashes (``<sha256>.<ext>``) under an optional prefix, so an upload is idempotent and nothing is ever
rewritten. Credentials come from boto3's usual chain (``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``, a profile,
an instance role). Every failure of the bucket is an ``OSError``, as a full or unreachable disk would be: the worker
fails such a job and refunds it, the bots answer with their one line.

boto3 comes with the ``s3`` extra and is imported only when a bucket is configured.
"""

from __future__ import annotations

from typing import Any

_ABSENT = ("404", "NoSuchKey", "NotFound")


class S3Bucket:
    """The remote half of an ``ImageStore``: upload, download, exists, remove, by store key."""

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str | None = None,
        client: Any = None,
    ) -> None:
        if client is None:
            import boto3

            client = boto3.client("s3", endpoint_url=endpoint_url or None, region_name=region or None)
        self.bucket = bucket
        self.prefix = prefix
        self.client = client

    def __repr__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def _name(self, key: str) -> str:
        return f"{self.prefix}{key}"

    def upload(self, key: str, data: bytes) -> None:
        content_type = "image/png" if key.endswith(".png") else "application/octet-stream"
        self._call("put", key, Bucket=self.bucket, Key=self._name(key), Body=data, ContentType=content_type)

    def download(self, key: str) -> bytes | None:
        """The object's bytes; None when the bucket has none under ``key``."""
        answer = self._call("get", key, Bucket=self.bucket, Key=self._name(key))
        if answer is None:
            return None
        body = answer["Body"]
        try:
            data: bytes = body.read()  # the download itself: a reset or a timeout here is the bucket's failure too
        except Exception as exc:  # botocore's ResponseStreamingError / IncompleteReadError, a read timeout
            raise OSError(f"image store {self!r}: get {key}: {exc}") from exc
        finally:
            body.close()
        return data

    def exists(self, key: str) -> bool:
        return self._call("head", key, Bucket=self.bucket, Key=self._name(key)) is not None

    def remove(self, key: str) -> bool:
        """Delete the object; False when there was none (S3's delete succeeds either way, so it asks first)."""
        if not self.exists(key):
            return False
        self._call("delete", key, Bucket=self.bucket, Key=self._name(key))
        return True

    def _call(self, verb: str, key: str, **params: Any) -> Any:
        """One S3 call; None when the object is absent, ``OSError`` for anything else that fails."""
        method = {"put": "put_object", "get": "get_object", "head": "head_object", "delete": "delete_object"}[verb]
        try:
            return getattr(self.client, method)(**params)
        except Exception as exc:  # botocore's ClientError / BotoCoreError, without importing botocore here
            response = getattr(exc, "response", None)
            code = str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""
            if code in _ABSENT and verb in ("get", "head"):
                return None
            raise OSError(f"image store {self!r}: {verb} {key}: {exc}") from exc
