"""The embedded default store: MEDIA_ROOT on this host's disk.

Uploads and derived files are staged under the same root, so one filesystem: a finished
upload is renamed into place (atomic), never copied, and a staged derived file is already
where it is served from.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import BinaryIO

ORIGINAL_MODE = 0o440


def _fsync(path: Path, flags: int = os.O_RDONLY) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileSystemStore:
    local = True

    def __init__(self, root: Path) -> None:
        self.root = root

    def local_path(self, key: str) -> Path:
        return self.root / key

    def put(self, source: Path, key: str, *, original: bool) -> None:
        """fsync, read-only, atomic rename, directory synced. The rename refuses to replace
        an existing original: originals are written exactly once."""
        target = self.local_path(key)
        if source == target:
            return  # staged in place (a derived file)
        target.parent.mkdir(parents=True, exist_ok=True)
        _fsync(source)
        if original:
            os.chmod(source, ORIGINAL_MODE)
            if target.exists():
                raise FileExistsError(target)
        os.rename(source, target)
        _fsync(target.parent)

    def size(self, key: str) -> int | None:
        try:
            return self.local_path(key).stat().st_size
        except FileNotFoundError:
            return None

    def open(self, key: str, start: int = 0, end: int | None = None) -> BinaryIO:
        file = open(self.local_path(key), "rb")  # noqa: SIM115 - the caller closes it
        file.seek(start)
        return file

    def etag(self, key: str) -> str | None:
        return None  # never asked: there is no cache in front of the disk

    def delete(self, key: str) -> None:
        path = self.local_path(key)
        path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # not empty: other originals of the case stay
            path.parent.rmdir()

    def delete_prefix(self, prefix: str) -> None:
        shutil.rmtree(self.local_path(prefix), ignore_errors=True)

    def keys(self, prefix: str = "") -> list[str]:
        base = self.local_path(prefix) if prefix else self.root
        if not base.exists():
            return []
        found = (p for p in base.rglob("*") if p.is_file() and not p.name.startswith(".tmp-"))
        return sorted(str(p.relative_to(self.root)) for p in found)
