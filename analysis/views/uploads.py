"""The upload API (docs/upload-api.md): tus 1.0 for standard clients, and the JSON sessions.

One resource, two ways in. `POST /cases/<case>/uploads/` creates a session: with a
Tus-Resumable header as tus creation (201 + Location), else from a JSON body. The session's
URL answers HEAD (the confirmed offset, for tus and everyone), GET (JSON: what the upload
became), PATCH (tus: bytes from Upload-Offset), PUT (bytes with a Content-Range) and DELETE
(tus termination). Chunk bodies normally arrive through the ASGI fast path
(gemma_web/chunk_put.py), which calls `chunk_range`, `chunk_accepted` and `chunk_refused`
here, so both doors answer alike.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from analysis import access, jsoninput
from analysis.media import tus, uploads
from analysis.media.types import MediaRejected
from analysis.models import MediaAsset, MediaUpload

Action = access.Action
CHUNK_METHODS = ("PUT", "PATCH")


@require_http_methods(["OPTIONS", "POST"])
def upload_create(request: HttpRequest, case_id) -> HttpResponse:
    if request.method == "OPTIONS":  # tus discovery: no session needed to ask what we speak
        return tus.capabilities(HttpResponse(status=204))
    return _create(request, case_id)


@login_required
def _create(request: HttpRequest, case_id) -> HttpResponse:
    found = access.get_case_or_404(request.user, case_id, Action.UPLOAD)
    speaks_tus = tus.is_tus(request)
    try:
        data = tus.creation(request) if speaks_tus else _payload(request)
    except jsoninput.BadInput as exc:
        return exc.response()
    except MediaRejected as exc:
        return _refusal(exc, tus_reply=True)
    try:
        upload = uploads.start(
            found.case, request.user, filename=str(data.get("filename", "")),
            size=data.get("size"), sha256=str(data.get("sha256", "")),
        )  # fmt: skip
    except uploads.AlreadyHere as exc:
        if not speaks_tus:
            return JsonResponse({"status": "complete", "duplicate": True, **_asset_json(exc.asset)})
        upload = uploads.already_here_session(
            found.case, request.user, filename=data["filename"], size=data["size"], asset=exc.asset
        )
    except MediaRejected as exc:
        return _refusal(exc, tus_reply=speaks_tus)
    if not speaks_tus:
        return JsonResponse(_upload_json(upload), status=201)
    reply = tus.headers(HttpResponse(status=201), upload)
    reply["Location"] = request.build_absolute_uri(_url(upload))
    return reply


def _payload(request: HttpRequest) -> dict:
    """A JSON session's filename, size and sha256, strictly typed (else BadInput)."""
    data = jsoninput.json_object(request)
    return {
        "filename": jsoninput.string(data, "filename", required=True),
        "size": jsoninput.whole_number(data, "size"),  # 0: refused as an empty file
        "sha256": jsoninput.string(data, "sha256", max_length=64),
    }


@require_http_methods(["GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS"])
def upload_detail(request: HttpRequest, case_id, upload_id) -> HttpResponse:
    if request.method == "OPTIONS":
        return tus.capabilities(HttpResponse(status=204))
    return _detail(request, case_id, upload_id)


@login_required
def _detail(request: HttpRequest, case_id, upload_id) -> HttpResponse:
    upload = own_upload(request, case_id, upload_id)
    if request.method in CHUNK_METHODS:
        return _put_chunk(request, upload)
    if request.method == "DELETE":
        uploads.cancel(upload)
        return tus.headers(HttpResponse(status=204))
    return _upload_reply(upload)


def own_upload(request: HttpRequest, case_id, upload_id) -> MediaUpload:
    """The upload at this URL if it is the user's, in a case where they may upload (else 404/403).

    Shared with the ASGI fast path for chunk bodies (gemma_web/chunk_put.py).
    """
    found = access.get_case_or_404(request.user, case_id, Action.UPLOAD)
    # An upload belongs to whoever started it: nobody else may add bytes to it.
    return get_object_or_404(MediaUpload, pk=upload_id, case=found.case, created_by=request.user)


def chunk_range(request: HttpRequest, upload: MediaUpload) -> tuple[str | None, object]:
    """(the Content-Range this request's body claims, the checksum to verify or None)."""
    if request.method == "PATCH":
        return tus.patch_range(request, upload.size), tus.checksum(request)
    return request.headers.get("Content-Range"), None


def _put_chunk(request: HttpRequest, upload: MediaUpload) -> HttpResponse:
    # Reached only when the fast path is bypassed (the test client, another server setup).
    try:
        content_range, checksum = chunk_range(request, upload)
        # The request is read as a stream, block by block: never request.body.
        done = uploads.receive(upload, request, content_range, request=request, checksum=checksum)
    except MediaRejected as exc:
        return chunk_refused(request, upload, exc)
    return chunk_accepted(request, upload, done)


def chunk_refused(request: HttpRequest, upload: MediaUpload, exc: MediaRejected) -> HttpResponse:
    reply = JsonResponse({"error": str(exc), **_upload_json(upload)}, status=exc.status)
    reply["Upload-Offset"] = str(upload.received)
    return tus.headers(reply) if request.method == "PATCH" else reply


def chunk_accepted(request: HttpRequest, upload: MediaUpload, done) -> HttpResponse:
    if request.method == "PATCH":
        return tus.headers(HttpResponse(status=204), done.upload if done else upload)
    if done is None:
        return _upload_reply(upload)
    return JsonResponse(_upload_json(done.upload))


def _refusal(exc: MediaRejected, *, tus_reply: bool) -> HttpResponse:
    reply = JsonResponse({"error": str(exc)}, status=exc.status)
    if tus_reply and exc.status == 412:
        reply["Tus-Version"] = tus.VERSION
    return tus.headers(reply) if tus_reply else reply


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
