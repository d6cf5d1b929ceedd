"""Where uploaded files' bytes live: content-addressed blobs behind a small interface.

Keys are the SHA-256 of the content in lower-case hex, so the same bytes are stored once and a
key can never name a path outside the storage root.
"""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import BinaryIO, Protocol

from flask import Flask

_KEY = re.compile(r"[0-9a-f]{64}")


class Storage(Protocol):
    """Stores bytes under a key it chooses; the database keeps the key."""

    def put(self, data: bytes) -> str: ...

    def open(self, key: str) -> BinaryIO: ...

    def delete(self, key: str) -> None: ...

    def exists(self, key: str) -> bool: ...


class LocalStorage:
    """Files in a local folder, at ``<root>/ab/cd/<sha256>``.

    Writes go to a temporary file in the target folder and are moved into place with
    :func:`os.replace`, so a reader never sees a partly written file.
    """

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)

    def path(self, key: str) -> Path:
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise ValueError(f"Not a storage key: {key!r}")
        return self.root / key[:2] / key[2:4] / key

    def put(self, data: bytes) -> str:
        key = hashlib.sha256(data).hexdigest()
        target = self.path(key)
        if target.is_file() and target.stat().st_size == len(data):
            return key
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, target)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        return key

    def open(self, key: str) -> BinaryIO:
        return self.path(key).open("rb")

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()


def storage_for(app: Flask) -> Storage:
    """The app's file storage: ``FILES_DIR`` if set, else ``files`` in the instance folder."""
    root = app.config.get("FILES_DIR") or Path(app.instance_path) / "files"
    return LocalStorage(root)
