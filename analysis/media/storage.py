"""Where media bytes live. Every path and key is made here, from ids: never from a request.

This module is the one place that stores, opens, serves and deletes media files, whatever
the store (stores/: this host's disk by default, an S3-compatible object store with
MEDIA_STORAGE=s3). MEDIA_ROOT is always this host's disk:

    MEDIA_ROOT/
      uploads/<upload-id>.part         bytes of an upload still under way (always local)
      originals/<case-id>/<asset-id>   the immutable original (filesystem store only)
      derived/<asset-id>/<name>        thumbnails, posters, strips, waveforms, page previews:
                                       written here by the media sandbox, then published

The store holds the same layout as keys ("originals/<case>/<asset>", "derived/<asset>/<name>").
On the filesystem store a finished upload is renamed into place (atomic), and a staged derived
file is already where it is served from. On the object store both are uploaded (multipart
for big files), then the local copy goes. Workers read originals through `local_original`:
a local file, fetched and verified against the recorded SHA-256 (stores/cache.py).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from django.conf import settings

from analysis.media import stores
from analysis.media.ingest import BLOCK
from analysis.media.stores import Mismatch

__all__ = ["Mismatch"]
DERIVED_MODE = 0o440
# Derived names are chosen by the media task; the serving view accepts only this shape.
DERIVED_NAME = re.compile(r"^[a-z][a-z0-9-]{0,40}\.(jpg|png|json|txt)$")


def root() -> Path:
    return Path(settings.MEDIA_ROOT)


def _uuid(value) -> str:
    # str(UUID(...)) both validates and normalizes: nothing else can become a path part.
    return str(value if isinstance(value, uuid.UUID) else uuid.UUID(str(value)))


def _derived_name(name: str) -> str:
    if not DERIVED_NAME.match(name):
        raise ValueError(f"not a derived file name: {name!r}")
    return name


def original_key(case_id, asset_id) -> str:
    return f"originals/{_uuid(case_id)}/{_uuid(asset_id)}"


def derived_key(asset_id, name: str) -> str:
    return f"derived/{_uuid(asset_id)}/{_derived_name(name)}"


# --- this host's disk: uploads under way, derived files being made ------------------------------


def partial_path(upload_id) -> Path:
    return root() / "uploads" / f"{_uuid(upload_id)}.part"


def original_path(case_id, asset_id) -> Path:
    """Where the filesystem store keeps an original (use the functions below to read it)."""
    return root() / original_key(case_id, asset_id)


def derived_dir(asset_id) -> Path:
    return root() / "derived" / _uuid(asset_id)


def derived_path(asset_id, name: str) -> Path:
    """Where a derived file is staged (and kept, on the filesystem store)."""
    return root() / derived_key(asset_id, name)


def open_partial(upload_id) -> int:
    """A descriptor for writing the upload's partial file, created on first use (0600)."""
    path = partial_path(upload_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    return os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)


def remove_partial(upload_id) -> None:
    partial_path(upload_id).unlink(missing_ok=True)


def free_bytes() -> int:
    """Room for uploads under way on this host (they are staged here whatever the store)."""
    base = root()
    base.mkdir(parents=True, exist_ok=True)
    return shutil.disk_usage(base).free


def files_under_root() -> list[Path]:
    """Every file under MEDIA_ROOT (tests assert that rejected uploads leave none)."""
    base = root()
    return sorted(p for p in base.rglob("*") if p.is_file()) if base.exists() else []


# --- originals ---------------------------------------------------------------------------------


def commit_original(upload_id, case_id, asset_id) -> None:
    """Move a finished upload into the store; written exactly once (the local file goes)."""
    stores.current().put(partial_path(upload_id), original_key(case_id, asset_id), original=True)


def original_size(case_id, asset_id) -> int | None:
    """The stored original's size; None when it is missing."""
    return stores.current().size(original_key(case_id, asset_id))


def open_original(case_id, asset_id, start: int = 0, end: int | None = None) -> BinaryIO:
    """A reader of the original's bytes start..end (inclusive). FileNotFoundError if gone."""
    return stores.current().open(original_key(case_id, asset_id), start, end)


def read_original_head(case_id, asset_id, count: int) -> bytes:
    with open_original(case_id, asset_id, 0, count - 1) as reader:
        return reader.read(count)


def hash_original(case_id, asset_id) -> str:
    """SHA-256 of the stored original, read block by block; "missing" when it is gone."""
    hasher = hashlib.sha256()
    try:
        with open_original(case_id, asset_id) as reader:
            while block := reader.read(BLOCK):
                hasher.update(block)
    except FileNotFoundError:
        return "missing"
    return hasher.hexdigest()


def local_original(case_id, asset_id, sha256: str, *, rehash: bool) -> Path:
    """A file on this host with the original's bytes, for a worker to decode.

    From the object store it is fetched into the worker's cache and verified against
    `sha256` (every fetch is); `rehash` hashes a copy already here again. Raises Mismatch.
    The file stays until `release_local()` (the end of the job).
    """
    store = stores.current()
    key = original_key(case_id, asset_id)
    path = store.local_path(key)
    if path is None:
        from analysis.media.stores import cache

        return cache.current().fetch(store, key, sha256, rehash=rehash)
    if rehash or not path.exists():
        found = hash_original(case_id, asset_id)
        if found != sha256:
            raise Mismatch(found)
    return path


def release_local() -> None:
    """The job is done with its local copies: the cache may evict them again."""
    if not stores.current().local:
        from analysis.media.stores import cache

        cache.current().release()


def remove_original(case_id, asset_id) -> None:
    stores.current().delete(original_key(case_id, asset_id))


# --- derived files -----------------------------------------------------------------------------


@contextmanager
def derived_writer(asset_id, name: str) -> Iterator[Path]:
    """A temporary path to write a derived file to; renamed into place when the block ends.

    Runs in the media sandbox (no network): the file is staged on this host's disk and
    reaches the store through `publish_derived`, in the worker, after the sandbox ends.
    """
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


def publish_derived(asset_id) -> None:
    """Every staged derived file of the item into the store (nothing to do on the disk)."""
    store = stores.current()
    if store.local:
        return
    folder = derived_dir(asset_id)
    for path in sorted(folder.iterdir()) if folder.exists() else []:
        if path.is_file() and DERIVED_NAME.match(path.name):
            store.put(path, derived_key(asset_id, path.name), original=False)
    shutil.rmtree(folder, ignore_errors=True)


def derived_size(asset_id, name: str) -> int | None:
    return stores.current().size(derived_key(asset_id, name))


def open_derived(asset_id, name: str, start: int = 0, end: int | None = None) -> BinaryIO:
    return stores.current().open(derived_key(asset_id, name), start, end)


def read_derived(asset_id, name: str) -> bytes:
    """A derived file's bytes (they are small). FileNotFoundError (an OSError) when gone."""
    with open_derived(asset_id, name) as reader:
        return reader.read()


def remove_derived(asset_id) -> None:
    shutil.rmtree(derived_dir(asset_id), ignore_errors=True)  # staged, not yet published
    stores.current().delete_prefix(f"derived/{_uuid(asset_id)}/")


# --- whole items -------------------------------------------------------------------------------


def derived_bytes(asset_id) -> int:
    """How much the item's derived files hold (retention's certificate says what went)."""
    store = stores.current()
    return sum(store.size(key) or 0 for key in store.keys(f"derived/{_uuid(asset_id)}/"))


def remove_item_files(case_id, asset_id) -> None:
    """Every file of one item: its original and all its derived files."""
    remove_derived(asset_id)
    remove_original(case_id, asset_id)


def item_files(case_id, asset_id) -> list[str]:
    """The keys of every stored file of one item (the original first)."""
    store = stores.current()
    original = original_key(case_id, asset_id)
    derived = store.keys(f"derived/{_uuid(asset_id)}/")
    return ([original] if store.size(original) is not None else []) + derived


def stored_keys() -> list[str]:
    """Every key in the store: originals and derived files (tests: nothing left over)."""
    store = stores.current()
    return store.keys("originals/") + store.keys("derived/")
