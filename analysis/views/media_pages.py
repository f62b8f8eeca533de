"""What the media templates show: the case page's media panel and one item's page.

An item's viewer is its kind's template (templates/analysis/media/kinds/), with the context
its kind's `page` hook adds (analysis/media/<kind>.py).
"""

from __future__ import annotations

from django.conf import settings

from analysis import access
from analysis.media import registry
from analysis.models import MediaAsset


def case_media_context(found: access.CaseAccess) -> dict:
    """For templates/analysis/cases/detail.html: the items, and whether this user may upload."""
    items = found.case.media.select_related("uploaded_by")
    return {
        "media_items": items.exclude(status=MediaAsset.Status.DELETED),
        "media_deleted": items.filter(status=MediaAsset.Status.DELETED),
        "can_upload": found.can(access.Action.UPLOAD),
        "chunk_bytes": settings.MEDIA_CHUNK_BYTES,
        "max_file_bytes": settings.MEDIA_MAX_FILE_BYTES,
    }


def page_context(asset: MediaAsset, *, member: bool) -> dict:
    """`member`: whether the viewer is one of the case's members, who alone see the fields
    a kind marks as identifying a person (a DICOM file's patient tags)."""
    kind = registry.get(asset.kind)
    hidden = set() if member else set(kind.private_metadata)
    shown = {k: v for k, v in asset.metadata.items() if k not in hidden}
    context = {
        "item": asset,
        "metadata_rows": metadata_rows(shown),
        "analyses": asset.analyses.select_related("created_by").order_by("-created_at"),
        "kind_template": kind.template,
    }
    if not asset.is_deleted and asset.status != MediaAsset.Status.REJECTED:
        context.update(kind.page(asset))
    return context


def metadata_rows(metadata: dict) -> list[tuple[str, str]]:
    rows = []
    for key, value in metadata.items():
        if value is None or value == "" or key in ("strip_times", "strip_frames"):
            continue
        if isinstance(value, dict):
            rows.extend((f"{key} {k}", str(v)) for k, v in value.items())
        else:
            rows.append((key.replace("_", " "), str(value)))
    return rows
