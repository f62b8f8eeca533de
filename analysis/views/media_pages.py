"""What the media templates show: the case page's media panel and one item's page.

An item's viewer is its kind's template (templates/analysis/media/kinds/), with the context
its kind's `page` hook adds (analysis/media/<kind>.py).
"""

from __future__ import annotations

from django.conf import settings
from django.core.paginator import Paginator
from django.urls import reverse

from analysis import access
from analysis.media import registry
from analysis.models import MediaAsset

MEDIA_PER_PAGE = 24


def case_media_context(found: access.CaseAccess, page_number=None) -> dict:
    """For templates/analysis/cases/detail.html: one page of items, the ask form's choices
    (the ready items of that page), and whether this user may upload.

    A case of real footage holds hundreds of items: the page draws one page of cards, and
    each card builds its links from one base URL rather than resolving three routes.
    """
    items = found.case.media.exclude(status=MediaAsset.Status.DELETED).order_by("-created_at")
    page = Paginator(items, MEDIA_PER_PAGE).get_page(page_number)
    shown = list(page)
    deleted = found.case.media.filter(status=MediaAsset.Status.DELETED).select_related(None)
    return {
        "media_page": page,
        "media_items": shown,
        "media_deleted": list(deleted.only("id", "filename", "deleted_at", "sha256")),
        "media_base": reverse("case-detail", args=[found.case.id]) + "media/",
        "ask_choices": [item for item in shown if item.is_ready],
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
        "notes": asset.notes.select_related("author").order_by("start_seconds", "created_at"),
    }
    if not asset.is_deleted and asset.status != MediaAsset.Status.REJECTED:
        context.update(kind.page(asset))
    return context


# How people read each fact: a label and a unit, instead of the probe's key and a bare number.
METADATA_LABELS: dict[str, tuple[str, object]] = {
    "duration": ("Duration", lambda v: _duration(float(v))),
    "bit_rate": ("Bit rate", lambda v: f"{float(v) / 1000:,.0f} kbit/s"),
    "sample_rate": ("Sample rate", lambda v: f"{float(v) / 1000:g} kHz"),
    "channels": ("Channels", lambda v: {1: "1 (mono)", 2: "2 (stereo)"}.get(int(v), str(v))),
    "has_audio": ("Sound track", lambda v: "yes" if v else "none"),
    "width": ("Width", lambda v: f"{int(v):,} px"),
    "height": ("Height", lambda v: f"{int(v):,} px"),
    "fps": ("Frame rate", lambda v: f"{float(v):.3g} frames/s"),
    "frames": ("Frames", lambda v: f"{int(v):,}"),
    "codec": ("Video codec", str),
    "audio_codec": ("Audio codec", str),
    "container": ("Container", str),
    "pages": ("Pages", lambda v: f"{int(v):,}"),
    "pdf_version": ("PDF version", str),
    "text_chars": ("Text", lambda v: f"{int(v):,} characters"),
    "chars": ("Text", lambda v: f"{int(v):,} characters"),
    "lines": ("Lines", lambda v: f"{int(v):,}"),
    "mode": ("Colour mode", str),
    "encoding": ("Encoding", str),
}


def _duration(seconds: float) -> str:
    whole = int(seconds)
    clock = f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"
    return f"{seconds:.1f} s ({clock})"


def _fact(key: str, value) -> tuple[str, str]:
    label, show = METADATA_LABELS.get(key, (key.replace("_", " ").capitalize(), str))
    try:
        return label, show(value)
    except (TypeError, ValueError):
        return label, str(value)


def metadata_rows(metadata: dict) -> list[tuple[str, str]]:
    rows = []
    for key, value in metadata.items():
        if value is None or value == "" or key in ("strip_times", "strip_frames"):
            continue
        if isinstance(value, dict):
            rows.extend((f"{key.capitalize()}: {k}", str(v)) for k, v in value.items())
        else:
            rows.append(_fact(key, value))
    return rows
