"""What the media task does to one item: derive previews and metadata, then ready or failed.

Runs in the media worker (analysis.tasks.process_media), never in the web process: this is
where untrusted files are decoded for real.
"""

from __future__ import annotations

import logging

from analysis import streaming
from analysis.media import audio, documents, images, storage, video
from analysis.media.ingest import MediaRejected
from analysis.models import MediaAsset

log = logging.getLogger(__name__)

DERIVERS = {
    MediaAsset.Kind.IMAGE: images.derive,
    MediaAsset.Kind.VIDEO: video.derive,
    MediaAsset.Kind.AUDIO: audio.derive,
    MediaAsset.Kind.DOCUMENT: documents.derive,
}


def process_asset(asset_id) -> MediaAsset | None:
    asset = MediaAsset.objects.filter(pk=asset_id).first()
    if asset is None or asset.status != MediaAsset.Status.PROCESSING:
        return asset  # deleted meanwhile, or a redelivered message for a finished item
    path = storage.original_path(asset.case_id, asset.id)
    try:
        metadata, derived = DERIVERS[asset.kind](asset.id, path, asset.mime)
    except MediaRejected as exc:
        _failed(asset, str(exc))
    except Exception as exc:
        # Anything unexpected still ends as "failed" with its reason, never "processing".
        log.exception("media %s could not be processed", asset.id)
        _failed(asset, f"Internal error: {type(exc).__name__}: {exc}")
    else:
        if not asset.finish_processing(metadata={**asset.metadata, **metadata}, derived=derived):
            storage.remove_derived(asset.id)  # deleted while we worked: leave nothing behind
    streaming.publish_media_status(asset)
    return asset


def _failed(asset: MediaAsset, reason: str) -> None:
    storage.remove_derived(asset.id)
    asset.fail_processing(reason)
