"""Deleting an item: its files go, its row stays (hash, size, uploader, who deleted it, when)."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from analysis import audit, search, streaming
from analysis.media import storage
from analysis.models import AuditEvent, MediaAsset

log = logging.getLogger(__name__)


def delete(asset: MediaAsset, *, user, request=None) -> bool:
    """Mark deleted and record it in one transaction; the files go once that has committed
    (a rolled-back delete must not have lost them). False when it was already deleted."""
    with transaction.atomic():
        if not asset.mark_deleted(user):
            return False
        audit.record(
            AuditEvent.Action.MEDIA_DELETED,
            actor=user,
            case=asset.case_id,
            target=asset,
            request=request,
            details={"filename": asset.filename, "size": asset.size, "sha256": asset.sha256},
        )
        search.index_media(asset)  # a deleted item's name and text leave the index
        transaction.on_commit(lambda: remove_files(asset))
    streaming.publish_media_status(asset)
    return True


def remove_files(asset: MediaAsset) -> None:
    from analysis.inference.cache import purge_media

    storage.remove_item_files(asset.case_id, asset.id)
    # Evaluated prefixes are derived data too: nothing of deleted evidence stays behind.
    purge_media(asset.sha256)


# Files left by a crash between a delete's commit and its removal are found by the next
# sweep (every MEDIA_UPLOAD_CLEAN_INTERVAL): looking back this far is plenty, and keeps the
# sweep from asking an object store about every item ever deleted, each time.
SWEEP_LOOKBACK = timedelta(days=2)


def sweep_deleted() -> int:
    """Files of deleted items that a crash left behind (run with the upload clean-up)."""
    count = 0
    recent = MediaAsset.objects.filter(
        status=MediaAsset.Status.DELETED, deleted_at__gte=timezone.now() - SWEEP_LOOKBACK
    )
    for asset in recent.only("id", "case_id"):
        if storage.item_files(asset.case_id, asset.id) or storage.derived_dir(asset.id).exists():
            log.warning("removing leftover files of deleted media %s", asset.id)
            remove_files(asset)
            count += 1
    return count
