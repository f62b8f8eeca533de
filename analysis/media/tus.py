"""The tus 1.0 resumable-upload protocol (core + creation, termination, checksum), as headers.

tus is what standard clients speak (tus-js-client on the case page, tuspy, Uppy ...). This
module only reads and writes its headers; the upload itself is the same as for every door:
uploads.py (sessions, quotas, finishing) and chunks.py (bytes hashed and written durably).
A PATCH carries the bytes from Upload-Offset on; it is turned into the byte range the
chunk writer takes, so limits, hashing and confirmed offsets are those of any chunk.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re

from django.conf import settings

from analysis.media.types import MediaRejected

VERSION = "1.0.0"
EXTENSIONS = "creation,termination,checksum"
CHECKSUMS = ("sha1", "sha256")
OFFSET_TYPE = "application/offset+octet-stream"
DIGITS = re.compile(r"^\d{1,19}$")
METADATA_KEY = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
CHECKSUM_MISMATCH = 460  # tus: the body's checksum differs from Upload-Checksum


def is_tus(request) -> bool:
    return "Tus-Resumable" in request.headers


def check_version(request) -> None:
    if request.headers.get("Tus-Resumable") != VERSION:
        raise MediaRejected(f"This server speaks tus {VERSION}.", status=412)


def _number(value: str | None, name: str) -> int:
    if value is None or not DIGITS.match(value.strip()):
        raise MediaRejected(f"{name} must be a number of bytes.", status=400)
    return int(value)


def creation(request) -> dict:
    """filename, size and sha256 (optional) of a POST that creates an upload."""
    check_version(request)
    if "Upload-Defer-Length" in request.headers:
        raise MediaRejected("Upload-Length must be known when the upload starts.", status=400)
    size = _number(request.headers.get("Upload-Length"), "Upload-Length")
    metadata = parse_metadata(request.headers.get("Upload-Metadata", ""))
    name = metadata.get("filename") or metadata.get("name") or ""
    return {"filename": name, "size": size, "sha256": metadata.get("sha256", "")}


def parse_metadata(header: str) -> dict[str, str]:
    """`key base64,key base64`: values are UTF-8 text for us (a file name, a hash)."""
    found: dict[str, str] = {}
    if len(header) > 8192:
        raise MediaRejected("Upload-Metadata is too long.", status=400)
    for pair in filter(None, (p.strip() for p in header.split(","))):
        key, _, value = pair.partition(" ")
        if not METADATA_KEY.match(key):
            raise MediaRejected(f"Upload-Metadata has a bad key {key[:64]!r}.", status=400)
        try:
            found[key] = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise MediaRejected(f"Upload-Metadata {key}: not base64 UTF-8.", status=400) from None
    return found


def patch_range(request, size: int) -> str:
    """The byte range a PATCH claims (Upload-Offset + its length), as a Content-Range."""
    check_version(request)
    if request.headers.get("Content-Type", "").split(";")[0].strip() != OFFSET_TYPE:
        raise MediaRejected(f"A PATCH body must be {OFFSET_TYPE}.", status=415)
    offset = _number(request.headers.get("Upload-Offset"), "Upload-Offset")
    length = _number(request.headers.get("Content-Length"), "Content-Length")
    if length == 0:
        raise MediaRejected("A PATCH must carry at least one byte.", status=400)
    if length > settings.MEDIA_CHUNK_BYTES:
        raise MediaRejected(
            f"A PATCH may carry at most {settings.MEDIA_CHUNK_BYTES} bytes.", status=413
        )
    return f"bytes {offset}-{offset + length - 1}/{size}"


def checksum(request):
    """(hash object, expected digest) from Upload-Checksum, or None when there is none."""
    header = request.headers.get("Upload-Checksum")
    if not header:
        return None
    algorithm, _, value = header.strip().partition(" ")
    if algorithm not in CHECKSUMS:
        raise MediaRejected(f"Upload-Checksum: {algorithm[:20]!r} is not supported.", status=400)
    try:
        digest = base64.b64decode(value.strip(), validate=True)
    except binascii.Error:
        raise MediaRejected("Upload-Checksum: the digest is not base64.", status=400) from None
    return hashlib.new(algorithm), digest


def headers(response, upload=None):
    """The headers every tus reply carries (and the upload's offset and length)."""
    response["Tus-Resumable"] = VERSION
    if upload is not None:
        response["Upload-Offset"] = str(upload.received)
        response["Upload-Length"] = str(upload.size)
        response["Cache-Control"] = "no-store"
    return response


def capabilities(response):
    """What OPTIONS says: the version, the extensions, the largest upload, checksums."""
    headers(response)
    response["Tus-Version"] = VERSION
    response["Tus-Extension"] = EXTENSIONS
    response["Tus-Max-Size"] = str(settings.MEDIA_MAX_FILE_BYTES)
    response["Tus-Checksum-Algorithm"] = ",".join(CHECKSUMS)
    return response
