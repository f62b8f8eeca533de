"""A worker's local copies of originals from the object store, by SHA-256, size-bounded.

Decoders (PyAV, PDFium, the engine's media loaders) want a file on disk; a worker on another
host has none. `fetch` streams the object into MEDIA_CACHE_DIR while hashing it, and keeps it
only when the hash is the one recorded at upload: a changed object in the store is refused
(Mismatch), never decoded. Entries are named by their hash, so a copy verified once is the
same bytes for every item that has them.

MEDIA_CACHE_BYTES bounds the folder: after each fetch the least recently used entries go
(a hit touches its entry). A check before analysis (`rehash`) hashes the copy again and
asks the store whether the object is still the one fetched (its ETag, one HEAD): a changed
object is fetched and verified again, and so refused. An entry in use is pinned with a
shared flock until the job releases it, and eviction, by any worker process on the host,
skips entries it cannot lock exclusively: a file is never pulled from under a decoder. A
single entry larger than the bound stays while it is in use.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import tempfile
import threading
import time
from pathlib import Path

from django.conf import settings

from analysis.media.ingest import BLOCK
from analysis.media.stores import Mismatch, Store

ENTRY = re.compile(r"^[0-9a-f]{64}$")
ENTRY_MODE = 0o400


class Cache:
    def __init__(self, folder: Path, limit: int) -> None:
        self.folder, self.limit = folder, limit
        # Per thread: an inference worker may answer several jobs at once, one thread each,
        # and one job ending must not unpin what another still reads.
        self._local = threading.local()

    def path(self, sha256: str) -> Path:
        if not ENTRY.match(sha256):
            raise ValueError(f"not a SHA-256: {sha256!r}")
        return self.folder / sha256

    def fetch(self, store: Store, key: str, sha256: str, *, rehash: bool) -> Path:
        """A verified local copy of `key`, pinned until `release()`. Raises Mismatch."""
        target = self.path(sha256)
        if self._pin(target):
            intact = not rehash or _hash(target) == sha256
            if intact and (not rehash or self._unchanged(store, key, target)):
                _touch(target)
                return target
            if not intact:
                self._drop(target)  # the local copy went bad: fetch it again from the store
        self.folder.mkdir(parents=True, exist_ok=True)
        self._download(store, key, sha256, target)
        if not self._pin(target):
            raise FileNotFoundError(target)  # evicted at once: cannot happen while pinned
        self.evict()
        return target

    def _unchanged(self, store: Store, key: str, target: Path) -> bool:
        """The object in the store is still the one this copy was fetched from (one HEAD):
        a copy here must not hide that someone changed the evidence in the store."""
        try:
            recorded = _etag_path(target).read_text()
        except FileNotFoundError:
            return False
        return store.etag(key) == recorded

    def _download(self, store: Store, key: str, sha256: str, target: Path) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".fetch-")
        try:
            hasher = hashlib.sha256()
            with os.fdopen(fd, "wb") as out:
                try:
                    reader = store.open(key)
                except FileNotFoundError:
                    raise Mismatch("missing") from None
                with reader:
                    while block := reader.read(BLOCK):
                        hasher.update(block)
                        out.write(block)
            if (found := hasher.hexdigest()) != sha256:
                raise Mismatch(found)
            os.chmod(tmp, ENTRY_MODE)
            _touch(Path(tmp))
            _etag_path(target).write_text(getattr(reader, "etag", "") or "")
            os.replace(tmp, target)  # two workers fetching the same bytes: either copy is good
        finally:
            Path(tmp).unlink(missing_ok=True)

    @property
    def _pins(self) -> dict[str, int]:
        """This thread's pins: entry name -> a descriptor holding a shared lock on it."""
        if not hasattr(self._local, "pins"):
            self._local.pins = {}
        return self._local.pins

    def _pin(self, target: Path) -> bool:
        """Hold a shared lock on the entry; False when it is not here."""
        if target.name in self._pins:
            return True
        try:
            fd = os.open(target, os.O_RDONLY)
        except FileNotFoundError:
            return False
        fcntl.flock(fd, fcntl.LOCK_SH)
        try:
            here = os.stat(target).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            here = False
        if not here:  # evicted (or replaced) while we waited for the lock
            os.close(fd)
            return False
        self._pins[target.name] = fd
        return True

    def _drop(self, target: Path) -> None:
        fd = self._pins.pop(target.name, None)
        if fd is not None:
            os.close(fd)
        target.unlink(missing_ok=True)
        _etag_path(target).unlink(missing_ok=True)

    def release(self) -> None:
        """Unpin every entry this thread holds (the job that read them is over)."""
        pins, self._local.pins = self._pins, {}
        for fd in pins.values():
            os.close(fd)

    def entries(self) -> list[tuple[float, int, Path]]:
        """(last used, size, path) of each entry, least recently used first."""
        found = []
        for path in self.folder.iterdir() if self.folder.exists() else []:
            if ENTRY.match(path.name):
                try:
                    info = path.stat()
                except FileNotFoundError:
                    continue
                found.append((info.st_mtime, info.st_size, path))
        return sorted(found)

    def evict(self) -> int:
        """Remove least recently used entries until the folder fits the bound; bytes freed."""
        entries = self.entries()
        total = sum(size for _, size, _ in entries)
        freed = 0
        for _, size, path in entries:
            if total <= self.limit:
                break
            if _remove_unless_in_use(path):
                total -= size
                freed += size
        _remove_stale_downloads(self.folder)
        return freed


def _remove_unless_in_use(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return False  # pinned by a job, here or in another worker process
    try:
        path.unlink(missing_ok=True)
        _etag_path(path).unlink(missing_ok=True)
    finally:
        os.close(fd)
    return True


def _etag_path(entry: Path) -> Path:
    # Beside the entry, under a name that is never taken for one.
    return entry.with_name(f".{entry.name}.etag")


def _remove_stale_downloads(folder: Path, age: float = 24 * 3600) -> None:
    # A worker killed mid-download leaves its temporary file behind.
    cutoff = time.time() - age
    for path in folder.glob(".fetch-*"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)
        except FileNotFoundError:
            continue


_last_touch = 0


def _touch(path: Path) -> None:
    """Mark the entry most recently used. The file clock ticks coarsely (milliseconds):
    the time is set from the nanosecond clock, strictly after the last one set here."""
    global _last_touch
    _last_touch = max(time.time_ns(), _last_touch + 1)
    os.utime(path, ns=(_last_touch, _last_touch))


def _hash(path: Path) -> str:
    hasher = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(BLOCK):
            hasher.update(block)
    return hasher.hexdigest()


_current: Cache | None = None


def current() -> Cache:
    global _current
    folder, limit = Path(settings.MEDIA_CACHE_DIR), settings.MEDIA_CACHE_BYTES
    if _current is None or (_current.folder, _current.limit) != (folder, limit):
        if _current is not None:
            _current.release()
        _current = Cache(folder, limit)
    return _current
