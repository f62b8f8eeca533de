"""The tus 1.0 resumable-upload protocol (core + creation, termination, checksum), as headers.

tus is the only way in for upload bytes: standard clients speak it (tus-js-client on the case
page, tuspy, Uppy ...). This module only reads and writes its headers; the upload itself is
uploads.py (sessions, quotas, finishing) and chunks.py (bytes hashed and written durably).
A PATCH carries the bytes from Upload-Offset on; it is turned into the byte span the chunk
writer takes, checked against the upload's length and the largest body a PATCH may carry.
"""

from __future__ import annotations

import base64
import hashlib
import re

from django.conf import settings

from analysis.media.types import MediaRejected

VERSION = "1.0.0"
EXTENSIONS = "creation,termination,checksum"
CHECKSUMS = ("sha1", "sha256")
OFFSET_TYPE = "application/offset+octet-stream"
DIGITS = re.compile(r"[0-9]{1,19}")  # ASCII only: int() would also take other scripts' digits
METADATA_KEY = re.compile(r"[A-Za-z0-9_.-]{1,64}")
CHECKSUM_MISMATCH = 460  # tus: the body's checksum differs from Upload-Checksum
# What a client that does not speak tus is told to send.
CREATION_HEADERS = (
    f"Tus-Resumable: {VERSION}, Upload-Length (bytes) and Upload-Metadata "
    "(filename, base64; sha256, optional)"
)
PATCH_HEADERS = f"Tus-Resumable: {VERSION}, Upload-Offset and Content-Type: {OFFSET_TYPE}"


def check_version(request, needed: str) -> None:
    """412 (tus: with Tus-Version) unless the request speaks tus 1.0; a client that does not
    speak tus at all is told which headers this request needs."""
    version = request.headers.get("Tus-Resumable")
    if version is None:
        raise MediaRejected(f"Uploads speak tus {VERSION}: send {needed}.", status=412)
    if version != VERSION:
        raise MediaRejected(f"This server speaks tus {VERSION}, not {version[:20]}.", status=412)


def _number(value: str | None, name: str) -> int:
    if value is None or not DIGITS.fullmatch(value.strip()):
        raise MediaRejected(f"{name} must be a number of bytes.", status=400)
    return int(value.strip())


def creation(request) -> dict:
    """filename, size and sha256 (optional) of a POST that creates an upload."""
    check_version(request, CREATION_HEADERS)
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
        if not METADATA_KEY.fullmatch(key):
            raise MediaRejected(f"Upload-Metadata has a bad key {key[:64]!r}.", status=400)
        try:
            found[key] = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except ValueError:  # not base64 (binascii.Error), not ASCII, not UTF-8
            raise MediaRejected(f"Upload-Metadata {key}: not base64 UTF-8.", status=400) from None
    return found


def patch_span(request, size: int) -> tuple[int, int]:
    """The first and last byte a PATCH carries (Upload-Offset + Content-Length), checked
    against the upload's length and MEDIA_CHUNK_BYTES before a byte of the body is read."""
    check_version(request, PATCH_HEADERS)
    if request.headers.get("Content-Type", "").split(";")[0].strip() != OFFSET_TYPE:
        raise MediaRejected(f"A PATCH body must be {OFFSET_TYPE}.", status=415)
    offset = _number(request.headers.get("Upload-Offset"), "Upload-Offset")
    length = _number(request.headers.get("Content-Length"), "Content-Length")
    return span(offset, length, size)


def span(offset: int, length: int, size: int) -> tuple[int, int]:
    """(first, last) of `length` bytes from `offset` into an upload of `size` bytes."""
    if length == 0:
        raise MediaRejected("A PATCH must carry at least one byte.", status=400)
    if length > settings.MEDIA_CHUNK_BYTES:
        raise MediaRejected(
            f"A PATCH may carry at most {settings.MEDIA_CHUNK_BYTES} bytes.", status=413
        )
    if offset + length > size:
        raise MediaRejected(
            f"{length} bytes from {offset} go past the upload's length ({size} bytes).",
            status=413,
        )
    return offset, offset + length - 1


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
    except ValueError:  # not base64 (binascii.Error), or not ASCII
        raise MediaRejected("Upload-Checksum: the digest is not base64.", status=400) from None
    return hashlib.new(algorithm), digest


def headers(response, upload=None):
    """The headers every tus reply carries (and the upload's offset and length)."""
    response["Tus-Resumable"] = VERSION
    if response.status_code == 412:  # a version refusal names the versions spoken
        response["Tus-Version"] = VERSION
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
