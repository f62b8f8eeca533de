"""The upload API (docs/upload-api.md): tus 1.0, core + creation, termination and checksum.

`POST /cases/<case>/uploads/` with Tus-Resumable creates an upload (201 + Location); a POST
in any other dialect is refused with 412 and the headers tus needs. The upload's URL answers
HEAD (the confirmed offset), PATCH (bytes from Upload-Offset), DELETE (termination) and GET:
the upload as JSON, i.e. what the file became once sent (the case page asks it after
tus-js-client is done). PATCH bodies normally arrive through the ASGI fast path
(gemma_web/upload_patch.py), which calls `own_upload`, `patch_accepted` and `patch_refused`
here, so both ways in answer alike.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from analysis import access
from analysis.media import tus, uploads
from analysis.media.types import MediaRejected
from analysis.models import MediaAsset, MediaUpload

Action = access.Action


@require_http_methods(["OPTIONS", "POST"])
def upload_create(request: HttpRequest, case_id) -> HttpResponse:
    if request.method == "OPTIONS":  # tus discovery: no session needed to ask what we speak
        return tus.capabilities(HttpResponse(status=204))
    return _create(request, case_id)


@login_required
def _create(request: HttpRequest, case_id) -> HttpResponse:
    found = access.get_case_or_404(request.user, case_id, Action.UPLOAD)
    try:
        data = tus.creation(request)
        upload = uploads.start(found.case, request.user, **data)
    except uploads.AlreadyHere as exc:
        upload = uploads.already_here_session(
            found.case, request.user, filename=data["filename"], size=data["size"], asset=exc.asset
        )
    except MediaRejected as exc:
        return _refusal(exc)
    reply = tus.headers(HttpResponse(status=201), upload)
    reply["Location"] = request.build_absolute_uri(_url(upload))
    return reply


@require_http_methods(["GET", "HEAD", "PATCH", "DELETE", "OPTIONS"])
def upload_detail(request: HttpRequest, case_id, upload_id) -> HttpResponse:
    if request.method == "OPTIONS":
        return tus.capabilities(HttpResponse(status=204))
    return _detail(request, case_id, upload_id)


@login_required
def _detail(request: HttpRequest, case_id, upload_id) -> HttpResponse:
    upload = own_upload(request, case_id, upload_id)
    if request.method == "PATCH":
        return _patch(request, upload)
    if request.method == "DELETE":
        uploads.cancel(upload)
        return tus.headers(HttpResponse(status=204))
    return _upload_reply(upload)


def own_upload(request: HttpRequest, case_id, upload_id) -> MediaUpload:
    """The upload at this URL if it is the user's, in a case where they may upload (else 404/403).

    Shared with the ASGI fast path for PATCH bodies (gemma_web/upload_patch.py).
    """
    found = access.get_case_or_404(request.user, case_id, Action.UPLOAD)
    # An upload belongs to whoever started it: nobody else may add bytes to it.
    return get_object_or_404(MediaUpload, pk=upload_id, case=found.case, created_by=request.user)


def _patch(request: HttpRequest, upload: MediaUpload) -> HttpResponse:
    # Reached only when the fast path is bypassed (the test client, another server setup).
    try:
        first, last = tus.patch_span(request, upload.size)
        checksum = tus.checksum(request)
        # The request is read as a stream, block by block: never request.body.
        done = uploads.receive(upload, request, first, last, request=request, checksum=checksum)
    except MediaRejected as exc:
        return patch_refused(upload, exc)
    return patch_accepted(upload, done)


def patch_refused(upload: MediaUpload, exc: MediaRejected) -> HttpResponse:
    # The upload's JSON with the error: a 409 says where to go on, a 422 what was refused.
    return _refusal(exc, upload)


def patch_accepted(upload: MediaUpload, done: uploads.Finished | None) -> HttpResponse:
    return tus.headers(HttpResponse(status=204), done.upload if done else upload)


def _refusal(exc: MediaRejected, upload: MediaUpload | None = None) -> HttpResponse:
    body = {"error": str(exc), **(_upload_json(upload) if upload is not None else {})}
    return tus.headers(JsonResponse(body, status=exc.status), upload)


def _upload_reply(upload: MediaUpload) -> HttpResponse:
    # Also the tus HEAD: Upload-Offset, Upload-Length, Tus-Resumable, no-store.
    return tus.headers(JsonResponse(_upload_json(upload)), upload)


def _url(upload: MediaUpload) -> str:
    return reverse("media-upload", args=[upload.case_id, upload.id])


def _upload_json(upload: MediaUpload) -> dict:
    body = {
        "upload": str(upload.id),
        "url": _url(upload),
        "filename": upload.filename,
        "size": upload.size,
        "offset": upload.received,
        "chunk_bytes": settings.MEDIA_CHUNK_BYTES,
        "status": upload.status,
        "expires_at": upload.expires_at.isoformat(),
    }
    if upload.status == MediaUpload.Status.REJECTED:
        body["error"] = upload.reason
    if upload.asset is not None:  # complete: what it became (a client resuming asks this)
        body.update(_asset_json(upload.asset), duplicate=upload.reason == uploads.ALREADY_HERE)
    return body


def _asset_json(asset: MediaAsset) -> dict:
    return {
        "asset": str(asset.id),
        "asset_url": reverse("media-detail", args=[asset.case_id, asset.id]),
        "asset_filename": asset.filename,
        "asset_status": asset.status,
        "detected": asset.detected,
        "sha256": asset.sha256,
    }
