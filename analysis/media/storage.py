"""Where media bytes live on disk. Every path is made here, from ids: never from a request.

    MEDIA_ROOT/
      uploads/<upload-id>.part         bytes of an upload still under way
      originals/<case-id>/<asset-id>   the immutable original (0440, no extension)
      derived/<asset-id>/<name>        thumbnails, posters, strips, waveforms, page previews

All three live under one root, so one filesystem: a finished upload is renamed into place
(atomic), never copied. Derived files are written the same way, so a reader never sees half.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings

ORIGINAL_MODE = 0o440
DERIVED_MODE = 0o440
# Derived names are chosen by the media task; the serving view accepts only this shape.
DERIVED_NAME = re.compile(r"^[a-z][a-z0-9-]{0,40}\.(jpg|png|json|txt)$")


def root() -> Path:
    return Path(settings.MEDIA_ROOT)


def _uuid(value) -> str:
    # str(UUID(...)) both validates and normalizes: nothing else can become a path part.
    return str(value if isinstance(value, uuid.UUID) else uuid.UUID(str(value)))


def partial_path(upload_id) -> Path:
    return root() / "uploads" / f"{_uuid(upload_id)}.part"


def original_path(case_id, asset_id) -> Path:
    return root() / "originals" / _uuid(case_id) / _uuid(asset_id)


def derived_dir(asset_id) -> Path:
    return root() / "derived" / _uuid(asset_id)


def derived_path(asset_id, name: str) -> Path:
    if not DERIVED_NAME.match(name):
        raise ValueError(f"not a derived file name: {name!r}")
    return derived_dir(asset_id) / name


def open_partial(upload_id) -> int:
    """A descriptor for writing the upload's partial file, created on first use (0600)."""
    path = partial_path(upload_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    return os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)


def remove_partial(upload_id) -> None:
    partial_path(upload_id).unlink(missing_ok=True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def commit_original(upload_id, case_id, asset_id) -> Path:
    """Move a finished upload into place: fsync, atomic rename, read-only, directory synced.

    The rename refuses to replace an existing file: originals are written exactly once.
    """
    source = partial_path(upload_id)
    target = original_path(case_id, asset_id)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(source, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(source, ORIGINAL_MODE)
    if target.exists():
        raise FileExistsError(target)
    os.rename(source, target)
    _fsync_dir(target.parent)
    return target


def remove_original(case_id, asset_id) -> None:
    path = original_path(case_id, asset_id)
    path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # not empty: other originals of the case stay
        path.parent.rmdir()


@contextmanager
def derived_writer(asset_id, name: str) -> Iterator[Path]:
    """A temporary path to write a derived file to; renamed into place when the block ends."""
    target = derived_path(asset_id, name)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=target.suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, DERIVED_MODE)
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)


def remove_derived(asset_id) -> None:
    shutil.rmtree(derived_dir(asset_id), ignore_errors=True)


def remove_item_files(case_id, asset_id) -> None:
    """Every file of one item: its original and all its derived files."""
    remove_derived(asset_id)
    remove_original(case_id, asset_id)


def item_files(case_id, asset_id) -> list[Path]:
    """Every file of one item that is on disk (the original first)."""
    original = original_path(case_id, asset_id)
    folder = derived_dir(asset_id)
    derived = sorted(p for p in folder.iterdir() if p.is_file()) if folder.exists() else []
    return ([original] if original.exists() else []) + derived


def files_under_root() -> list[Path]:
    """Every file under MEDIA_ROOT (tests assert that rejected uploads leave none)."""
    base = root()
    return sorted(p for p in base.rglob("*") if p.is_file()) if base.exists() else []


def free_bytes() -> int:
    base = root()
    base.mkdir(parents=True, exist_ok=True)
    return shutil.disk_usage(base).free
