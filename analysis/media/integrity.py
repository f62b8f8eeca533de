"""Chain of custody: re-hash an original and record what was found.

Called by `manage.py verify_media`, by the serving view after a full download, and
by the analysis pipeline before a model reads the file. A mismatch sticks to the item, is
shown on the case page and written to the audit trail.
"""

from __future__ import annotations

from django.db import transaction

from analysis import audit, streaming
from analysis.media import storage
from analysis.media.ingest import hash_file
from analysis.models import AuditEvent, MediaAsset


def verify_asset(asset: MediaAsset, *, via: str, actor=None, request=None) -> bool:
    """Hash the original again; True when it still matches the hash taken at upload."""
    path = storage.original_path(asset.case_id, asset.id)
    actual = hash_file(path) if path.exists() else "missing"
    return report(asset, actual, via=via, actor=actor, request=request)


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
