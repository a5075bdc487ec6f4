"""The image store: content-addressed files under ``IMPASTO_DATA_DIR/images``.

A key is the sha256 of the bytes plus the format's extension (``3f…a9.png``); files sit under two levels of
two-character fan-out folders so no directory grows past a few thousand entries. Writing the same bytes twice is
free and safe (a retried worker stores the same key). An S3-compatible store can replace this class later behind
the same few methods.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

KEY_PATTERN = re.compile(r"^[0-9a-f]{64}\.[a-z0-9]{1,5}$")
EXT_PATTERN = re.compile(r"^[a-z0-9]{1,5}$")


class ImageKeyError(ValueError):
    """A key that is not one this store hands out (and might point outside it)."""


class ImageStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @classmethod
    def in_data_dir(cls, data_dir: Path) -> ImageStore:
        return cls(Path(data_dir) / "images")

    def put(self, data: bytes, ext: str = "png") -> str:
        """Store ``data`` and return its key; an existing identical file is left as is."""
        ext = ext.lower().lstrip(".")
        if not EXT_PATTERN.match(ext):
            raise ImageKeyError(f"image extension {ext!r} is not allowed; use 1–5 lowercase letters or digits")
        key = f"{hashlib.sha256(data).hexdigest()}.{ext}"
        path = self.path(key)
        if path.exists():
            return key
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
        return key

    def get(self, key: str) -> bytes:
        """The bytes stored under ``key``; FileNotFoundError when there are none."""
        return self.path(key).read_bytes()

    def delete(self, key: str) -> bool:
        """Remove the file stored under ``key`` (the evidence purge); False when there was none. Keys are
        content hashes, so the caller makes sure no other job still shows the same bytes."""
        path = self.path(key)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        return True

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def path(self, key: str) -> Path:
        """Where ``key`` lives on disk. Keys are validated: nothing but ``<sha256>.<ext>`` is accepted."""
        if not isinstance(key, str) or not KEY_PATTERN.match(key):
            raise ImageKeyError(f"image key {key!r} is not a store key (<sha256 hex>.<ext>)")
        return self.root / key[:2] / key[2:4] / key
