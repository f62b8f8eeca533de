"""One chunk of a resumable upload (the body of one tus PATCH) on its way to disk: bytes in,
hashed, written, confirmed.

Both ways a PATCH body arrives use this: the Django view (analysis/views/uploads.py) feeds it
from the request stream, and the ASGI fast path (gemma_web/upload_patch.py) feeds it the body
as it arrives. The rules live here and in analysis/media/uploads.py, never in either of them.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor

from analysis.media import diskwrite, storage
from analysis.media.types import MediaRejected


class _Hashers:
    """SHA-256 state of the uploads this process is receiving, so hashing rides the stream.

    hashlib objects cannot be saved in the database: an upload resumed in another process
    (or after a restart) is hashed again from disk when it finishes. Least recently used
    entries go first, so an abandoned upload costs a few hundred bytes until then.
    """

    def __init__(self, limit: int = 256) -> None:
        self._items: OrderedDict[str, tuple[int, object]] = OrderedDict()
        self._lock = threading.Lock()
        self.limit = limit

    def take(self, upload_id, offset: int):
        with self._lock:
            entry = self._items.pop(str(upload_id), None)
        return entry[1] if entry and entry[0] == offset else None

    def put(self, upload_id, offset: int, hasher) -> None:
        with self._lock:
            self._items[str(upload_id)] = (offset, hasher)
            while len(self._items) > self.limit:
                self._items.popitem(last=False)

    def drop(self, upload_id) -> None:
        with self._lock:
            self._items.pop(str(upload_id), None)


HASHERS = _Hashers()
# Hash threads for the chunks this process receives at once (each waits for its own).
_HASHING = ThreadPoolExecutor(max_workers=4, thread_name_prefix="upload-sha256")


def _update(hashers, blocks) -> None:
    for block in blocks:
        for hasher in hashers:
            hasher.update(block)


class ChunkWriter:
    """Writes bytes FIRST..LAST of an upload's partial file, hashing them on the way.

    The caller holds the partial file's lock (`fd`). Bytes are counted as they arrive: a
    body longer than its Content-Length is refused at the first block past it, a short one at
    `seal()`. On any failure `abort()` cuts the file back to FIRST and puts the hash state
    back, so nothing half-written counts. Not thread-safe: one writer per chunk, one block
    at a time (the fast path hands blocks to a worker thread in order, one in flight).
    """

    def __init__(self, upload_id, fd: int, first: int, last: int, checksum=None) -> None:
        """`checksum`: (hash object, expected digest) of this chunk's bytes, or None."""
        self.upload_id, self.fd, self.first, self.last = upload_id, fd, first, last
        self._checksum = checksum
        self.length = last - first + 1
        self.written = 0
        self._hasher = HASHERS.take(upload_id, first)
        if self._hasher is None and first == 0:
            self._hasher = hashlib.sha256()
        self._working = self._hasher.copy() if self._hasher is not None else None
        os.ftruncate(fd, first)  # whatever a failed earlier attempt left past the offset goes
        direct = diskwrite.open_direct(storage.partial_path(upload_id))
        self._out = diskwrite.SequentialWriter(fd, direct, first)

    def write(self, *blocks: bytes) -> None:
        """Append blocks (any sizes, in order). Big writes: one syscall, one hash pass each."""
        size = sum(len(b) for b in blocks)
        if self.written + size > self.length:
            raise MediaRejected(
                f"The body is longer than its Content-Length says ({self.length} bytes).",
                status=400,
            )
        # SHA-256 and the disk each take about half of a block's time and both release the
        # GIL: the hash runs beside the write instead of after it.
        hashers = [h for h in (self._working, self._checksum and self._checksum[0]) if h]
        hashing = _HASHING.submit(_update, hashers, blocks) if hashers else None
        try:
            for block in blocks:
                self._out.write(block)
        finally:
            if hashing is not None:
                hashing.result()  # never leave a hash running past this call
        self.written += size

    def seal(self) -> None:
        """Check the chunk is whole and make it durable: "confirmed" means on disk."""
        if self.written < self.length:
            raise MediaRejected(
                f"The chunk ended after {self.written} of {self.length} bytes; send it again.",
                status=400,
            )
        if self._checksum is not None and self._checksum[0].digest() != self._checksum[1]:
            raise MediaRejected(
                "The chunk arrived different from its checksum; send it again.", status=460
            )
        # Without the fdatasync a crash could leave a partial file shorter than the offset
        # the client was told, or with holes in it (diskwrite.py keeps it cheap).
        self._out.flush()
        if self._working is not None:
            HASHERS.put(self.upload_id, self.last + 1, self._working)

    def abort(self) -> None:
        os.ftruncate(self.fd, self.first)
        if self._hasher is not None:
            HASHERS.put(self.upload_id, self.first, self._hasher)

    def close(self) -> None:
        try:
            self._out.close()
        finally:
            os.close(self.fd)  # releases the upload's lock
