"""The image store: content-addressed files under ``IMPASTO_DATA_DIR/images``.

A key is the sha256 of the bytes plus the format's extension (``3f…a9.png``); files sit under two levels of
two-character fan-out folders so no directory grows past a few thousand entries. Writing the same bytes twice is
free and safe (a retried worker stores the same key).

Several hosts share the store either through a shared filesystem mounted at the root, or through a remote
(``RemoteStore``; ``storage/s3.py``: an S3-compatible bucket): then the local folder is a cache of the bucket. ``put``
writes locally and uploads what the bucket lacks; ``get`` and ``local_file`` download an image this host has not seen
(once: content-addressed files never change); ``exists`` and ``delete`` cover both.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Protocol

KEY_PATTERN = re.compile(r"^[0-9a-f]{64}\.[a-z0-9]{1,5}$")
EXT_PATTERN = re.compile(r"^[a-z0-9]{1,5}$")


class ImageKeyError(ValueError):
    """A key that is not one this store hands out (and might point outside it)."""


class RemoteStore(Protocol):
    """Where a store's images also live, shared by every host (``storage.s3.S3Bucket``). Failures are ``OSError``."""

    def upload(self, key: str, data: bytes) -> None: ...

    def download(self, key: str) -> bytes | None: ...

    def exists(self, key: str) -> bool: ...

    def remove(self, key: str) -> bool: ...


class ImageStore:
    def __init__(self, root: Path, *, remote: RemoteStore | None = None) -> None:
        self.root = Path(root)
        self.remote = remote

    @classmethod
    def in_data_dir(cls, data_dir: Path, *, remote: RemoteStore | None = None) -> ImageStore:
        return cls(Path(data_dir) / "images", remote=remote)

    def put(self, data: bytes, ext: str = "png") -> str:
        """Store ``data`` and return its key; an existing identical file is left as is."""
        ext = ext.lower().lstrip(".")
        if not EXT_PATTERN.match(ext):
            raise ImageKeyError(f"image extension {ext!r} is not allowed; use 1–5 lowercase letters or digits")
        key = f"{hashlib.sha256(data).hexdigest()}.{ext}"
        if self.remote is not None and not self.remote.exists(key):
            self.remote.upload(key, data)  # first: a key handed out is a key every host can read
        self._write_local(key, data)
        return key

    def _write_local(self, key: str, data: bytes) -> None:
        path = self.path(key)
        if path.exists():
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write to a temporary file and rename: a reader never sees half an image, two writers never collide.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, key: str) -> bytes:
        """The bytes stored under ``key``; FileNotFoundError when there are none."""
        path = self.path(key)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            if self.remote is None:
                raise
        data = self.remote.download(key)
        if data is None:
            raise FileNotFoundError(f"image {key} is in neither {self.root} nor {self.remote!r}")
        self._write_local(key, data)  # kept: the next reader on this host reads the disk
        return data

    def local_file(self, key: str) -> Path | None:
        """A file on this host holding ``key``'s bytes (downloaded from the remote if needed); None if nowhere."""
        path = self.path(key)
        if path.is_file():
            return path
        if self.remote is None:
            return None
        try:
            self.get(key)
        except FileNotFoundError:
            return None
        return path

    def delete(self, key: str) -> bool:
        """Remove the file stored under ``key`` (the evidence purge); False when there was none. Keys are
        content hashes, so the caller makes sure no other job still shows the same bytes."""
        path = self.path(key)
        removed = self.remote.remove(key) if self.remote is not None else False
        try:
            path.unlink()
        except FileNotFoundError:
            return removed
        return True

    def exists(self, key: str) -> bool:
        return self.path(key).is_file() or (self.remote is not None and self.remote.exists(key))

    def path(self, key: str) -> Path:
        """Where ``key`` lives on disk. Keys are validated: nothing but ``<sha256>.<ext>`` is accepted."""
        if not isinstance(key, str) or not KEY_PATTERN.match(key):
            raise ImageKeyError(f"image key {key!r} is not a store key (<sha256 hex>.<ext>)")
        return self.root / key[:2] / key[2:4] / key
