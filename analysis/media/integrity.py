"""Chain of custody: re-hash an original and record what was found.

Called by `manage.py verify_media`, by the serving view after a full download, by the media
worker and by the analysis pipeline before a model reads the file (`local_copy`: on the
object store, every fetch is verified). A mismatch sticks to the item, is shown on the case
page and written to the audit trail.
"""

from __future__ import annotations

from pathlib import Path

from django.db import transaction

from analysis import audit, streaming
from analysis.media import storage
from analysis.models import AuditEvent, MediaAsset

CHANGED = (
    "The stored original differs from the file that was uploaded (SHA-256 mismatch): not checked."
)


def verify_asset(asset: MediaAsset, *, via: str, actor=None, request=None) -> bool:
    """Hash the stored original again; True when it still matches the hash taken at upload."""
    actual = storage.hash_original(asset.case_id, asset.id)
    return report(asset, actual, via=via, actor=actor, request=request)


def local_copy(asset: MediaAsset, *, via: str, rehash: bool = True) -> Path | None:
    """The original as a file on this host for a worker to read, its bytes verified against
    the recorded SHA-256; None (recorded, item flagged) when they differ or are missing.

    `rehash`: hash a copy already here again, and record the check when it passes.
    """
    try:
        path = storage.local_original(asset.case_id, asset.id, asset.sha256, rehash=rehash)
    except storage.Mismatch as exc:
        report(asset, exc.found, via=via)
        return None
    if rehash:
        report(asset, asset.sha256, via=via)
    return path


def report(
    asset: MediaAsset, actual: str, *, via: str, actor=None, request=None, record_ok=True
) -> bool:
    """Store and record the outcome of a check; a plain inline view records only failures."""
    ok = actual == asset.sha256
    if ok and not record_ok:
        asset.record_hash_check(True)
        return True
    action = AuditEvent.Action.MEDIA_HASH_VERIFIED if ok else AuditEvent.Action.MEDIA_HASH_MISMATCH
    details = {"via": via, "sha256": asset.sha256}
    if not ok:
        details["found"] = actual
    with transaction.atomic():
        asset.record_hash_check(ok)
        audit.record(
            action, actor=actor, case=asset.case_id, target=asset, request=request, details=details
        )
    if not ok:
        streaming.publish_media_status(asset)
    return ok
