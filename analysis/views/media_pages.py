"""What the media templates show: the case page's media panel and one item's page."""

from __future__ import annotations

import json

from django.conf import settings

from analysis import access
from analysis.media import storage
from analysis.models import MediaAsset

TEXT_PREVIEW_BYTES = 256 * 1024
PDF_PAGES_SHOWN = 200


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


def page_context(asset: MediaAsset) -> dict:
    context = {
        "item": asset,
        "metadata_rows": metadata_rows(asset.metadata),
        "analyses": asset.analyses.select_related("created_by").order_by("-created_at"),
        "pages": [],
        "text_preview": None,
    }
    if asset.is_deleted:
        return context
    if asset.mime == "application/pdf" and asset.is_ready:
        context["pages"] = pdf_pages(asset)
    elif asset.mime == "text/plain":
        context["text_preview"], context["text_cut"] = text_preview(asset)
    return context


def metadata_rows(metadata: dict) -> list[tuple[str, str]]:
    rows = []
    for key, value in metadata.items():
        if value is None or value == "" or key == "strip_times":
            continue
        if isinstance(value, dict):
            rows.extend((f"{key} {k}", str(v)) for k, v in value.items())
        else:
            rows.append((key.replace("_", " "), str(value)))
    return rows


def pdf_pages(asset: MediaAsset) -> list[dict]:
    texts: list[str] = []
    name = asset.derived.get("text")
    if name:
        try:
            texts = json.loads(storage.derived_path(asset.id, name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            texts = []
    previews = asset.derived.get("pages", [])
    count = min(max(len(texts), len(previews)), PDF_PAGES_SHOWN)
    return [
        {
            "number": i + 1,
            "preview": previews[i] if i < len(previews) else None,
            "text": texts[i] if i < len(texts) else "",
        }
        for i in range(count)
    ]


def text_preview(asset: MediaAsset) -> tuple[str, bool]:
    path = storage.original_path(asset.case_id, asset.id)
    try:
        with open(path, "rb") as f:
            head = f.read(TEXT_PREVIEW_BYTES)
    except OSError:
        return "", False
    return head.decode("utf-8", errors="replace"), asset.size > TEXT_PREVIEW_BYTES
