"""HTTP for media bytes: Range (206/416), safe headers, and hashing while a whole file goes out.

Under ASGI, Django consumes a *sync* streaming iterator into one list before sending it (a
whole video in memory), so ASGI requests get an async iterator that reads block by block in
a worker thread; the WSGI test client gets the plain sync one.

A response that carries the whole original is hashed on the way out. Its last block is held
back until the hash is known: on a mismatch the item is flagged, the audit trail says so,
and the download stops one block short (so it never completes as if it were intact).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO
from urllib.parse import quote

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpResponse, StreamingHttpResponse

from analysis.media import registry

BLOCK = 256 * 1024
RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
# The only Content-Types media is ever served with. Never text/html; anything unexpected
# goes out as an opaque download.
SAFE_TYPES = {
    "image/jpeg", "image/png", "image/gif", "image/webp", "image/tiff", "image/bmp",
    "audio/wav", "audio/mpeg", "audio/aac", "audio/flac", "audio/ogg", "audio/mp4",
    "audio/webm", "audio/x-matroska", "audio/x-msvideo",
    "video/mp4", "video/quicktime", "video/webm", "video/x-matroska", "video/x-msvideo",
    "application/pdf", "application/json", "application/dicom",
}  # fmt: skip
DERIVED_TYPES = {".jpg": "image/jpeg", ".png": "image/png", ".json": "application/json"}


class RangeNotSatisfiable(Exception):
    pass


@dataclass(frozen=True)
class Span:
    start: int
    end: int  # inclusive
    partial: bool

    @property
    def length(self) -> int:
        return self.end - self.start + 1


def parse_range(header: str | None, size: int) -> Span:
    """One byte range (what media players send); several ranges get the whole file (RFC 9110
    lets a server ignore Range). A malformed or unsatisfiable bytes range is a 416."""
    whole = Span(0, size - 1, False)
    if not header or not header.strip().lower().startswith("bytes="):
        return whole
    spec = header.strip()
    if "," in spec:
        return whole
    match = RANGE.match(spec.replace(" ", ""))
    if not match or match.groups() == ("", ""):
        raise RangeNotSatisfiable(spec)
    first, last = match.groups()
    if first == "":  # suffix: the last N bytes
        count = int(last)
        if count == 0:
            raise RangeNotSatisfiable(spec)
        return Span(max(0, size - count), size - 1, True)
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or start > end:
        raise RangeNotSatisfiable(spec)
    return Span(start, end, True)


def content_type(mime: str) -> str:
    if mime == "text/plain":
        return "text/plain; charset=utf-8"
    return mime if mime in SAFE_TYPES else "application/octet-stream"


def served_name(asset) -> str:
    """The client's name with the extension of the detected type: a PNG uploaded as
    report.html downloads as report.png, so the file manager opens it as what it is."""
    stem = asset.filename
    if "." in stem.strip("."):
        stem = stem.rsplit(".", 1)[0]
    return f"{stem or 'download'}{registry.extension(asset.mime)}"


def content_disposition(filename: str, *, attachment: bool) -> str:
    """RFC 6266: an ASCII fallback in filename=, the real name in filename*=UTF-8''."""
    kind = "attachment" if attachment else "inline"
    ascii_name = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode()
    ascii_name = re.sub(r"[^A-Za-z0-9 ._()+-]", "_", ascii_name).strip() or "download"
    header = f'{kind}; filename="{ascii_name}"'
    if ascii_name != filename:
        header += f"; filename*=UTF-8''{quote(filename, safe='')}"
    return header


def not_satisfiable(size: int) -> HttpResponse:
    response = HttpResponse(status=416, content_type="text/plain; charset=utf-8")
    response["Content-Range"] = f"bytes */{size}"
    return response


# Gets the SHA-256 of a whole file that was sent; returns whether it matched.
OnVerified = Callable[[str], bool]
# Opens bytes start..end (inclusive) of a stored file: storage.open_original / open_derived.
Opener = Callable[[int, int], BinaryIO]


def stream_file(
    request, opener: Opener, span: Span, size: int, *, on_whole: OnVerified | None = None
) -> StreamingHttpResponse:
    """The bytes of `span`, streamed; `on_whole` gets the hash when all of a file was sent.

    Only the span is read from the store (an object store is asked for that range alone)."""
    hashing = on_whole is not None and span.start == 0 and span.end == size - 1
    args = (opener, span, on_whole if hashing else None)
    content = _ablocks(*args) if isinstance(request, ASGIRequest) else _blocks(*args)
    response = StreamingHttpResponse(content, status=206 if span.partial else 200)
    response["Content-Length"] = str(span.length)
    response["Accept-Ranges"] = "bytes"
    if span.partial:
        response["Content-Range"] = f"bytes {span.start}-{span.end}/{size}"
    return response


def _blocks(opener: Opener, span: Span, on_whole: OnVerified | None) -> Iterator[bytes]:
    reader = _Reader(opener, span, on_whole is not None)
    try:
        held = None
        while block := reader.next():
            if held is not None:
                yield held
            held = block
        if held is not None and reader.finish(on_whole):
            yield held
    finally:
        reader.close()


async def _ablocks(opener: Opener, span: Span, on_whole: OnVerified | None) -> AsyncIterator[bytes]:
    reader = await sync_to_async(_Reader, thread_sensitive=False)(
        opener, span, on_whole is not None
    )
    read = sync_to_async(reader.next, thread_sensitive=False)
    try:
        held = None
        while block := await read():
            if held is not None:
                yield held
            held = block
        if held is not None and await sync_to_async(reader.finish)(on_whole):
            yield held
    finally:
        reader.close()


class _Reader:
    """Reads a span block by block, hashing as it goes when asked to."""

    def __init__(self, opener: Opener, span: Span, hashing: bool) -> None:
        self.file = opener(span.start, span.end)  # closed by close()
        self.left = span.length
        self.hasher = hashlib.sha256() if hashing else None

    def next(self) -> bytes:
        block = self.file.read(min(BLOCK, self.left)) if self.left > 0 else b""
        self.left -= len(block)
        if self.hasher is not None:
            self.hasher.update(block)  # hashlib releases the GIL on large blocks
        return block

    def finish(self, on_whole: OnVerified | None) -> bool:
        """True when the held-back last block may go: all was read and, if hashed, verified."""
        if self.left > 0:
            return False  # the file shrank under us: do not pretend the response is whole
        if self.hasher is None or on_whole is None:
            return True
        return bool(on_whole(self.hasher.hexdigest()))

    def close(self) -> None:
        self.file.close()
