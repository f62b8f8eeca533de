"""Media: the item page, deleting, and the serving views (the upload API is in uploads.py).

Every view asks access.py first; an item is always looked up inside the case the user may
see, so a guessed item id from another case is a 404 like everything else.
"""

from __future__ import annotations

from functools import partial

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe

from analysis import access, audit
from analysis.media import integrity, removal, serving, storage
from analysis.models import AuditEvent, MediaAsset
from analysis.views.media_pages import page_context

Action = access.Action


# --- pages -------------------------------------------------------------------------------------


def _asset_or_404(found: access.CaseAccess, asset_id) -> MediaAsset:
    return get_object_or_404(MediaAsset, pk=asset_id, case=found.case)


@login_required
@require_safe
def media_detail(request: HttpRequest, case_id, asset_id) -> HttpResponse:
    found = access.get_case_or_404(request.user, case_id)
    asset = _asset_or_404(found, asset_id)
    if request.htmx:  # the case page refreshing one card after a live status message
        media_base = reverse("case-detail", args=[found.case.id]) + "media/"
        context = {"item": asset, "case": found.case, "media_base": media_base}
        return render(request, "analysis/media/card.html", context)
    if not asset.is_deleted:
        audit.record(
            AuditEvent.Action.MEDIA_VIEWED, case=found.case, target=asset, request=request,
            details={"via": "page"},
        )  # fmt: skip
    context = page_context(asset, member=found.is_member)
    context.update(case=found.case, access=found, can_delete=found.can(Action.DELETE_MEDIA))
    context["can_comment"] = found.can(Action.COMMENT)
    return render(request, "analysis/media/detail.html", context)


@login_required
@require_POST
def media_delete(request: HttpRequest, case_id, asset_id) -> HttpResponse:
    found = access.get_case_or_404(request.user, case_id, Action.DELETE_MEDIA)
    asset = _asset_or_404(found, asset_id)
    if removal.delete(asset, user=request.user, request=request):
        messages.success(request, f"“{asset.filename}” deleted; its record and hash are kept.")
    return redirect("case-detail", case_id=found.case.id)


# --- serving -----------------------------------------------------------------------------------


@login_required
@require_safe
def media_file(request: HttpRequest, case_id, asset_id) -> HttpResponse:
    """The original, with Range support; a whole-file response is hashed on its way out."""
    found = access.get_case_or_404(request.user, case_id)
    asset = _asset_or_404(found, asset_id)
    if asset.status == MediaAsset.Status.PURGED:
        raise Http404("This item's original was purged under the retention policy.")
    if asset.status in MediaAsset.GONE:
        return HttpResponse(f"This item was {asset.status}; its record is kept.", status=410)
    if storage.original_size(asset.case_id, asset.id) is None:
        integrity.report(asset, "missing", via="serve", request=request)
        raise Http404("The original file is missing.")
    download = request.GET.get("download") == "1"
    etag = f'"{asset.sha256}"'
    range_header = request.headers.get("Range")
    if request.headers.get("If-Range", etag) != etag:
        range_header = None  # the client's copy is of other bytes: send it all again
    try:
        span = serving.parse_range(range_header, asset.size)
    except serving.RangeNotSatisfiable:
        return serving.not_satisfiable(asset.size)
    if request.method == "HEAD":
        response = HttpResponse(status=206 if span.partial else 200)
        response["Content-Length"] = str(span.length)
        response["Accept-Ranges"] = "bytes"
    else:
        _record_access(request, asset, span, download)
        response = serving.stream_file(
            request, partial(storage.open_original, asset.case_id, asset.id), span, asset.size,
            on_whole=_verifier(request, asset, download),
        )  # fmt: skip
    return _media_headers(response, asset.mime, serving.served_name(asset), download, etag)


EMBEDDED = frozenset({"image", "video", "audio", "track"})


def _record_access(request, asset: MediaAsset, span: serving.Span, download: bool) -> None:
    # A player asks for many ranges while seeking; the one from byte 0 marks the access.
    if span.start != 0:
        return
    # Shown inside the item's page (its player or viewer): that page recorded the view.
    if not download and request.headers.get("Sec-Fetch-Dest") in EMBEDDED:
        return
    action = AuditEvent.Action.MEDIA_DOWNLOADED if download else AuditEvent.Action.MEDIA_VIEWED
    details = {"via": "file", "bytes": f"{span.start}-{span.end}"}
    audit.record(action, case=asset.case_id, target=asset, request=request, details=details)


def _verifier(request, asset: MediaAsset, download: bool):
    def check(actual: str) -> bool:
        via = "download" if download else "view"
        return integrity.report(
            asset, actual, via=via, actor=request.user, request=request, record_ok=download
        )

    return check


def _media_headers(response, mime: str, filename: str, download: bool, etag: str):
    response["Content-Type"] = serving.content_type(mime)
    response["Content-Disposition"] = serving.content_disposition(filename, attachment=download)
    response["X-Content-Type-Options"] = "nosniff"
    response["ETag"] = etag
    response["Cross-Origin-Resource-Policy"] = "same-origin"
    # PDFs too: a script in one (an OpenAction) must not run with the site's origin. The
    # media page shows re-encoded page images; the original opens sandboxed or downloads.
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


@login_required
@require_safe
def media_derived(request: HttpRequest, case_id, asset_id, name: str) -> HttpResponse:
    """Thumbnails, posters, strips, waveforms, page previews: only names the task recorded."""
    found = access.get_case_or_404(request.user, case_id)
    asset = _asset_or_404(found, asset_id)
    if name not in derived_names(asset.derived):
        raise Http404("No such derived file.")
    size = storage.derived_size(asset.id, name)
    if size is None:
        raise Http404("No such derived file.")
    audit.record(
        AuditEvent.Action.MEDIA_VIEWED, case=asset.case_id, target=asset, request=request,
        details={"via": "derived", "name": name},
    )  # fmt: skip
    opener = partial(storage.open_derived, asset.id, name)
    response = serving.stream_file(request, opener, serving.Span(0, size - 1, False), size)
    mime = serving.DERIVED_TYPES[name[name.rindex(".") :]]
    _media_headers(response, mime, name, False, f'"{asset.id}-{name}"')
    return response


def derived_names(derived: dict) -> set[str]:
    names: set[str] = set()
    for value in derived.values():
        names.update(value if isinstance(value, list) else [value])
    return {n for n in names if isinstance(n, str)}
