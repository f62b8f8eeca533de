"""What the media worker does to one item: check it in the sandbox, then ready or rejected.

The upload path only sniffed the magic bytes. Here the file is probed by its kind's real
decoder and its derivatives are made, all in a child process under limits (sandbox.py):
a file that is not what it claims, or that makes a decoder spin or balloon, ends as
"rejected" with the reason, and its files are removed. Runs in the media worker
(analysis.tasks.process_media), never in the web process.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path

from analysis import audit, search, streaming
from analysis.media import integrity, registry, sandbox, storage
from analysis.media.types import Detected, MediaRejected
from analysis.models import AuditEvent, MediaAsset

log = logging.getLogger(__name__)


def process_asset(asset_id) -> MediaAsset | None:
    asset = MediaAsset.objects.filter(pk=asset_id).first()
    if asset is None or asset.status != MediaAsset.Status.CHECKING:
        return asset  # deleted meanwhile, or a redelivered message for a finished item
    try:
        _check(asset)
    finally:
        storage.release_local()
    search.index_media(asset)
    streaming.publish_media_status(asset)
    return asset


def _check(asset: MediaAsset) -> None:
    # A local copy: on the object store it is fetched here and verified against the hash
    # taken at upload, so the sandbox decodes exactly the bytes that were uploaded.
    path = integrity.local_copy(asset, via="media-check", rehash=False)
    if path is None:
        asset.fail_checking(integrity.CHANGED)
        return
    try:
        found, metadata, derived = sandbox.run(check, str(asset.id), str(path))
        detected = Detected(**found)
        registry.get(detected.kind)  # the child's answer names a kind we know, or is refused
        storage.publish_derived(asset.id)  # the sandbox has no network: staged files go now
    except MediaRejected as exc:
        _rejected(asset, str(exc))
    except Exception as exc:
        # Anything unexpected still ends as "failed" with its reason, never "checking".
        log.exception("media %s could not be processed", asset.id)
        storage.remove_derived(asset.id)
        asset.fail_checking(f"Internal error: {type(exc).__name__}: {exc}")
    else:
        if not asset.finish_checking(detected, metadata=metadata, derived=derived):
            storage.remove_derived(asset.id)  # deleted while we worked: leave nothing behind


def check(asset_id: str, name: str) -> tuple[dict, dict, dict]:
    """In the sandbox: the kind's probe, then the derivatives of what it found."""
    path = Path(name)
    sniffed = registry.sniff_file(path)
    detected = registry.get(sniffed.kind).probe(path, sniffed.key)
    # A container may turn out to be another kind (an MP4 with sound only is audio).
    metadata, derived = registry.get(detected.kind).derive(asset_id, path, detected.mime)
    return asdict(detected), {**detected.metadata, **metadata}, derived


def _rejected(asset: MediaAsset, reason: str) -> None:
    storage.remove_item_files(asset.case_id, asset.id)
    if asset.reject(reason):
        audit.record(
            AuditEvent.Action.MEDIA_REJECTED, case=asset.case_id, target=asset,
            details={"filename": asset.filename, "sha256": asset.sha256, "reason": reason},
        )  # fmt: skip
