"""Resumable uploads (docs/upload-api.md): start, take chunks (tus PATCH bodies) in order,
finish, expire.

The database's `received` is the truth about what arrived; the partial file is cut back to
it before every write, so a chunk that died half-way leaves nothing that counts. Writers to
one upload are serialized by an exclusive flock on its partial file. Finishing either
creates the MediaAsset row ("checking") and renames the file into place in one transaction,
or removes everything: no half-saved row, no orphan file. Finishing looks at the magic bytes
only; the media worker probes and previews the file in its sandbox.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import BinaryIO, NoReturn

from celery import current_app
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from analysis import audit, metrics, streaming
from analysis.media import registry, storage
from analysis.media.chunks import HASHERS, ChunkWriter
from analysis.media.ingest import BLOCK, hash_file
from analysis.media.types import MediaRejected
from analysis.models import AuditEvent, Case, MediaAsset, MediaUpload

log = logging.getLogger(__name__)
SHA256 = re.compile(r"^[0-9a-f]{64}$")
ALREADY_HERE = "already here"


class AlreadyHere(Exception):
    """These exact bytes are already in the case: no second copy is made."""

    def __init__(self, asset: MediaAsset) -> None:
        super().__init__(f"Already here as “{asset.filename}”.")
        self.asset = asset


class OutOfOrder(MediaRejected):
    def __init__(self, expected: int) -> None:
        super().__init__(
            f"Upload-Offset is not the confirmed offset: send the bytes from {expected}.",
            status=409,
        )
        self.expected = expected


@dataclass(frozen=True)
class Finished:
    upload: MediaUpload
    asset: MediaAsset
    duplicate: bool = False


# --- starting ----------------------------------------------------------------------------------


def display_name(raw: str) -> str:
    """The client's file name made safe to show: last path part, no control or bidi characters.

    It is only ever displayed (and offered back on download); it never reaches the disk.
    """
    name = re.split(r"[/\\]", unicodedata.normalize("NFC", str(raw)))[-1]
    # Category C: controls (NUL ...), format characters (right-to-left overrides, zero-width
    # joiners), surrogates, private use, unassigned.
    name = "".join(ch for ch in name if not unicodedata.category(ch).startswith("C"))
    name = " ".join(name.split()).strip(" .")
    if len(name) > 200:
        stem, dot, ext = name.rpartition(".")
        name = f"{stem[:180]}…{dot}{ext}" if dot and len(ext) <= 16 else name[:200]
    return name or "unnamed"


def start(case: Case, user, *, filename: str, size: int, sha256: str = "") -> MediaUpload:
    size = _checked_size(size)
    sha256 = (sha256 or "").strip().lower()
    if sha256 and not SHA256.match(sha256):
        raise MediaRejected("sha256 must be 64 hexadecimal digits.", status=400)
    if sha256 and (existing := _existing(case.pk, sha256)):
        raise AlreadyHere(existing)
    if storage.free_bytes() < size + 64 * 1024 * 1024:
        raise MediaRejected("The server's disk is too full for this file.", status=507)
    with transaction.atomic():
        # One upload at a time may reserve room in a case (PostgreSQL row lock; SQLite's
        # IMMEDIATE transactions already serialize writers).
        Case.objects.select_for_update().filter(pk=case.pk).first()
        used = MediaAsset.bytes_used(case.pk) + MediaUpload.reserved_bytes(case.pk)
        if used + size > settings.MEDIA_MAX_CASE_BYTES:
            raise MediaRejected(
                f"This case holds {_gib(used)} of its {_gib(settings.MEDIA_MAX_CASE_BYTES)} "
                f"limit; a {_gib(size)} file does not fit.",
                status=413,
            )
        return MediaUpload.objects.create(
            case=case,
            created_by=user,
            filename=display_name(filename),
            size=size,
            client_sha256=sha256,
            expires_at=_expiry(),
        )


def already_here_session(case: Case, user, *, filename: str, size: int, asset) -> MediaUpload:
    """A session born complete, pointing at the item that holds these bytes already: what a
    tus client that announced a known hash is given (it asks the offset, finds it done)."""
    return MediaUpload.objects.create(
        case=case, created_by=user, filename=display_name(filename), size=size,
        received=size, status=MediaUpload.Status.COMPLETE, asset=asset, reason=ALREADY_HERE,
        expires_at=_expiry(),
    )  # fmt: skip


def _checked_size(size: int) -> int:
    if size == 0:
        raise MediaRejected("The file is empty (0 bytes).")
    if size > settings.MEDIA_MAX_FILE_BYTES:
        raise MediaRejected(
            f"The file is {_gib(size)}; the limit is {_gib(settings.MEDIA_MAX_FILE_BYTES)}.",
            status=413,
        )
    return size


def _gib(n: int) -> str:
    return f"{n / 1024**3:.2f} GiB" if n >= 1024**3 else f"{n / 1024**2:.1f} MiB"


def _expiry():
    return timezone.now() + timedelta(seconds=settings.MEDIA_UPLOAD_EXPIRY)


def _existing(case_id, sha256: str) -> MediaAsset | None:
    rows = MediaAsset.objects.filter(case_id=case_id, sha256=sha256)
    return rows.exclude(status__in=MediaAsset.GONE).first()


# --- receiving ---------------------------------------------------------------------------------


def open_chunk(
    upload: MediaUpload, first: int, last: int, checksum=None
) -> ChunkWriter | Finished | None:
    """Lock the upload and check where bytes FIRST..LAST go, before any of them is read
    (tus.patch_span has checked them against the upload's length and the chunk limit).

    Returns a ChunkWriter to feed (the caller then calls `close_chunk`, and `writer.close()`
    in any case: that releases the lock), or the answer at once: Finished when the upload is
    already complete, None when these bytes were confirmed before (a chunk sent twice).
    """
    if upload.status == MediaUpload.Status.REJECTED:
        raise MediaRejected(upload.reason)
    if upload.status == MediaUpload.Status.COMPLETE:
        return finished(upload)  # no partial file to lock (and none to create)
    fd = storage.open_partial(upload.id)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        upload.refresh_from_db()
        if upload.status == MediaUpload.Status.COMPLETE:
            early = finished(upload)
        elif last < upload.received:
            early = None  # a chunk sent again: already confirmed, nothing to do
        elif first != upload.received:
            raise OutOfOrder(upload.received)
        else:
            return ChunkWriter(upload.id, fd, first, last, checksum)
    except BaseException:
        os.close(fd)
        raise
    os.close(fd)  # releases the lock
    return early


def close_chunk(upload: MediaUpload, writer: ChunkWriter, *, request=None) -> Finished | None:
    """Confirm a fed chunk (whole, on disk, recorded); finish the upload after its last one."""
    try:
        writer.seal()
    except BaseException:
        writer.abort()
        raise
    MediaUpload.objects.filter(pk=upload.pk).update(
        received=writer.last + 1, expires_at=_expiry(), updated_at=timezone.now()
    )
    upload.received = writer.last + 1
    metrics.count_upload_bytes(writer.length)
    if upload.received == upload.size:
        return finish(upload, request=request)
    return None


def receive(
    upload: MediaUpload, stream: BinaryIO, first: int, last: int, *, request=None, checksum=None
):
    """Write bytes FIRST..LAST read from a file-like stream. Returns Finished once the last
    byte of the upload is in."""
    writer = open_chunk(upload, first, last, checksum)
    if not isinstance(writer, ChunkWriter):
        return writer
    try:
        try:
            # One byte more than the chunk still needs: a body longer than announced shows.
            while block := stream.read(min(BLOCK, writer.length - writer.written + 1)):
                writer.write(block)
        except BaseException:
            writer.abort()
            raise
        return close_chunk(upload, writer, request=request)
    finally:
        writer.close()


def finished(upload: MediaUpload) -> Finished:
    return Finished(upload, upload.asset, duplicate=upload.reason == ALREADY_HERE)


# --- finishing ---------------------------------------------------------------------------------


def finish(upload: MediaUpload, *, request=None) -> Finished:
    path = storage.partial_path(upload.id)
    hasher = HASHERS.take(upload.id, upload.size)
    sha256 = hasher.hexdigest() if hasher is not None else hash_file(path)
    if upload.client_sha256 and sha256 != upload.client_sha256:
        _reject(upload, "The file arrived different from what was sent (SHA-256 mismatch).")
    if existing := _existing(upload.case_id, sha256):
        return _already_here(upload, existing)
    try:
        # Magic bytes only: the decoders run in the media worker's sandbox (processing.py).
        sniffed = registry.sniff_file(path)
    except MediaRejected as exc:
        _reject(upload, str(exc))
    try:
        return _store(upload, sniffed, sha256, request)
    except IntegrityError:
        # The same bytes finished in another upload at this very moment.
        if existing := _existing(upload.case_id, sha256):
            return _already_here(upload, existing)
        log.exception("upload %s could not be stored", upload.id)
        _reject(upload, "The file could not be stored (database error); upload it again.")
    except OSError as exc:
        log.exception("upload %s could not be stored", upload.id)
        _reject(upload, f"The file could not be stored (disk error: {exc.strerror}).")


def _store(upload: MediaUpload, sniffed, sha256: str, request) -> Finished:
    asset_id = uuid.uuid4()
    # The bytes go into the store first, outside the transaction: an upload to an object
    # store may take minutes, and the audit chain of the case stays locked while the
    # transaction is open. A failure below removes them again.
    storage.commit_original(upload.id, upload.case_id, asset_id)
    try:
        with transaction.atomic():
            asset = MediaAsset.objects.create(
                id=asset_id, case_id=upload.case_id, uploaded_by_id=upload.created_by_id,
                filename=upload.filename, kind=sniffed.kind, mime=sniffed.mime,
                detected=sniffed.label, size=upload.size, sha256=sha256,
            )  # fmt: skip
            audit.record(
                AuditEvent.Action.MEDIA_UPLOADED, actor=upload.created_by, case=upload.case_id,
                target=asset, request=request, details=_upload_details(asset),
            )  # fmt: skip
            _close(upload, MediaUpload.Status.COMPLETE, asset=asset)
            transaction.on_commit(lambda: enqueue(asset))
    except Exception:
        storage.remove_original(upload.case_id, asset_id)
        raise
    return Finished(upload, asset)


def _upload_details(asset: MediaAsset) -> dict:
    return {
        "filename": asset.filename, "size": asset.size, "sha256": asset.sha256,
        "kind": asset.kind, "mime": asset.mime, "detected": asset.detected,
    }  # fmt: skip


def _already_here(upload: MediaUpload, existing: MediaAsset) -> Finished:
    storage.remove_partial(upload.id)
    _close(upload, MediaUpload.Status.COMPLETE, asset=existing, reason=ALREADY_HERE)
    return Finished(upload, existing, duplicate=True)


def _reject(upload: MediaUpload, reason: str) -> NoReturn:
    storage.remove_partial(upload.id)
    HASHERS.drop(upload.id)
    _close(upload, MediaUpload.Status.REJECTED, reason=reason)
    raise MediaRejected(reason)


def _close(upload: MediaUpload, status: str, *, asset=None, reason: str = "") -> None:
    upload.status, upload.asset, upload.reason = status, asset, reason
    # Kept a while so that a client retrying its last chunk gets the same answer.
    upload.expires_at = _expiry()
    upload.save(update_fields=["status", "asset", "reason", "expires_at", "updated_at"])


PROCESS_TASK = "analysis.tasks.process_media"


def enqueue(asset: MediaAsset) -> None:
    """Hand a committed item to the media queue; a broker that is down fails it visibly."""
    try:
        send_to_queue(str(asset.id))
    except Exception as exc:  # kombu raises a zoo of connection errors
        log.exception("could not enqueue media %s", asset.id)
        asset.fail_checking(f"Could not queue the check (broker unavailable): {exc}")
    streaming.publish_media_status(asset)


def send_to_queue(asset_id: str) -> None:
    # By name: media modules never import the tasks module (it imports them).
    current_app.send_task(PROCESS_TASK, args=[asset_id])


# --- ending ------------------------------------------------------------------------------------


def cancel(upload: MediaUpload) -> None:
    if upload.is_active:
        storage.remove_partial(upload.id)
    HASHERS.drop(upload.id)
    upload.delete()


def expire(now=None) -> int:
    """Remove uploads past their expiry (and their partial files); then orphaned partials."""
    now = now or timezone.now()
    removed = 0
    for upload_id in list(MediaUpload.expired(now).values_list("id", flat=True)):
        # Conditional: a chunk that arrived meanwhile pushed the expiry back.
        if MediaUpload.objects.filter(pk=upload_id, expires_at__lte=now).delete()[0]:
            storage.remove_partial(upload_id)
            HASHERS.drop(upload_id)
            removed += 1
    return removed + _remove_orphans(now)


def _remove_orphans(now) -> int:
    folder = storage.root() / "uploads"
    cutoff = (now - timedelta(seconds=settings.MEDIA_UPLOAD_EXPIRY)).timestamp()
    removed = 0
    for path in folder.glob("*.part") if folder.exists() else []:
        try:
            upload_id = uuid.UUID(path.stem)
        except ValueError:
            continue
        if path.stat().st_mtime < cutoff and not MediaUpload.objects.filter(pk=upload_id).exists():
            path.unlink(missing_ok=True)
            removed += 1
    return removed
