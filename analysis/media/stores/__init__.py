"""Where stored media bytes live: one backend per process, chosen by MEDIA_STORAGE.

    filesystem  MEDIA_ROOT itself (the embedded default: one host, or a shared disk)
    s3          an S3-compatible object store (SeaweedFS, MinIO, Ceph, NetApp, AWS): every
                host reaches it over the network, so workers need no shared disk

A backend knows keys ("originals/<case>/<asset>", "derived/<asset>/<name>"), never ids or
requests: analysis/media/storage.py makes every key and is the only caller.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import BinaryIO, Protocol

from django.conf import settings


class Mismatch(Exception):
    """The bytes found differ from the recorded SHA-256 ("missing" when there are none)."""

    def __init__(self, found: str) -> None:
        super().__init__(f"SHA-256 mismatch: found {found}")
        self.found = found


class Store(Protocol):
    # True when the store is this host's MEDIA_ROOT: staged files are already in place.
    local: bool

    def put(self, source: Path, key: str, *, original: bool) -> None:
        """Move the local file `source` into the store under `key` (it is gone afterwards)."""

    def size(self, key: str) -> int | None:
        """The stored object's size, or None when there is none."""

    def open(self, key: str, start: int = 0, end: int | None = None) -> BinaryIO:
        """A reader of bytes start..end (inclusive; None: to the end). FileNotFoundError."""

    def etag(self, key: str) -> str | None:
        """A tag that changes whenever the object does (the object store's ETag)."""

    def delete(self, key: str) -> None: ...

    def delete_prefix(self, prefix: str) -> None: ...

    def keys(self, prefix: str = "") -> list[str]: ...

    def local_path(self, key: str) -> Path | None:
        """Where the object is on this host's disk, when the store is that disk."""


_lock = threading.Lock()
_current: tuple[tuple, Store] | None = None


def _config() -> tuple:
    # Settings may change under tests: a store is made again whenever its settings differ.
    if settings.MEDIA_STORAGE == "s3":
        return ("s3", settings.S3_ENDPOINT_URL, settings.S3_BUCKET, settings.S3_PREFIX,
                settings.S3_ACCESS_KEY_ID, settings.S3_REGION, settings.S3_OBJECT_LOCK)  # fmt: skip
    return ("filesystem", str(settings.MEDIA_ROOT))


def current() -> Store:
    global _current
    config = _config()
    with _lock:
        if _current is None or _current[0] != config:
            _current = (config, _make(config))
        return _current[1]


def _make(config: tuple) -> Store:
    if config[0] == "s3":
        from analysis.media.stores.s3 import ObjectStore

        return ObjectStore.from_settings()
    if config[0] != "filesystem":
        raise ValueError(f"MEDIA_STORAGE must be filesystem or s3, not {config[0]!r}")
    from analysis.media.stores.filesystem import FileSystemStore

    return FileSystemStore(Path(config[1]))
