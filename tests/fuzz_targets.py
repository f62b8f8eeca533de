"""Fuzz targets: what the site does with bytes and headers straight from a client.

Shared by tests/test_fuzz.py (Hypothesis, a few hundred inputs each, in CI) and bench/fuzz.py
(the same properties for as long as it is given). Each target calls the real code and lets
only its documented refusal through; any other exception is a finding. Seeds are real samples
of every accepted kind (tests/media_samples.py), mutated where the parsers look hardest.
"""

from __future__ import annotations

import base64
import json
import tempfile
import unicodedata
from collections import Counter
from functools import cache
from pathlib import Path

from hypothesis import strategies as st

from analysis.inference import gguf_header
from analysis.media import registry, serving, tus, uploads
from analysis.media.types import MediaRejected
from tests import media_samples

TRIED: Counter = Counter()  # inputs tried, per target
KINDS = {"image", "audio", "video", "document", "dicom"}
KEYS = {"jpeg", "png", "gif", "tiff", "webp", "wav", "avi", "bmp", "flac", "ogg", "mp3", "pdf"}
KEYS |= {"matroska", "isobmff", "aac", "text", "dicom"}
TINY_GGUF = Path(__file__).parent / "fixtures" / "models" / "tiny-gemma4-f16.gguf"


@cache
def seeds() -> dict[str, bytes]:
    return {name: make() for name, (make, _, _) in media_samples.ACCEPTED.items()}


@cache
def gguf_seed() -> bytes:
    header = gguf_header.read(TINY_GGUF)
    return TINY_GGUF.read_bytes()[: header.data_start + 4096]  # the header and a little data


@st.composite
def mutated(draw, seed: st.SearchStrategy[bytes]) -> bytes:
    """A real file with a few byte flips, overwrites, cuts and insertions, mostly near the
    front (where the headers the probes read are)."""
    data = bytearray(draw(seed))
    for _ in range(draw(st.integers(0, 6))):
        if not data:
            break
        near_front = draw(st.booleans())
        pos = draw(st.integers(0, min(len(data) - 1, 511) if near_front else len(data) - 1))
        how = draw(st.sampled_from(["flip", "overwrite", "cut", "insert", "repeat"]))
        if how == "flip":
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif how == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=16))
            data[pos : pos + len(chunk)] = chunk
        elif how == "cut":
            del data[pos:]
        elif how == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=64))
        else:
            data[pos:pos] = data[pos : pos + draw(st.integers(1, 256))]
    return bytes(data)


def media_files() -> st.SearchStrategy[bytes]:
    # Deferred: the seeds are encoded (a few seconds) when the first input is drawn.
    return st.deferred(lambda: mutated(st.sampled_from([seeds()[n] for n in sorted(seeds())])))


def gguf_files() -> st.SearchStrategy[bytes]:
    return st.deferred(lambda: mutated(st.just(gguf_seed())))


def _scratch(data: bytes) -> Path:
    f = tempfile.NamedTemporaryFile(prefix="fuzz-", delete=False)  # noqa: SIM115
    with f:
        f.write(data)
    return Path(f.name)


# --- targets -------------------------------------------------------------------------------


def sniff(head: bytes) -> None:
    TRIED["sniff"] += 1
    try:
        found = registry.sniff(head)
        assert found.key in KEYS and found.kind in KINDS and found.extension.startswith(".")
    except MediaRejected as exc:
        assert str(exc)


def identify(data: bytes) -> None:
    """Type sniffing plus metadata probing (Pillow, PyAV, pypdf, pydicom, UTF-8) of a whole
    file: the kind's probe, as the media worker runs it (here without its sandbox, so that a
    crash shows as one)."""
    TRIED["identify"] += 1
    path = _scratch(data)
    try:
        sniffed = registry.sniff_file(path)
        detected = registry.get(sniffed.kind).probe(path, sniffed.key)
        assert detected.kind in KINDS and detected.mime
        json.dumps(detected.metadata)  # stored in a JSON field
    except MediaRejected as exc:
        assert str(exc) and str(path) not in str(exc)  # never a server path in a message
    finally:
        path.unlink()


class _Request:
    """What tus.py reads of a request: its headers."""

    def __init__(self, **headers: str) -> None:
        self.headers = {name.replace("_", "-"): value for name, value in headers.items()}


def tus_patch(offset: str, length: str, size: int) -> None:
    """A tus PATCH's Upload-Offset and Content-Length, against the upload's length."""
    TRIED["tus_patch"] += 1
    request = _Request(
        Tus_Resumable=tus.VERSION, Content_Type=tus.OFFSET_TYPE, Upload_Offset=offset,
        Content_Length=length,
    )  # fmt: skip
    try:
        first, last = tus.patch_span(request, size)
    except MediaRejected as exc:
        assert exc.status in (400, 413) and str(exc)
    else:
        assert 0 <= first <= last < size


def byte_range(header: str, size: int) -> None:
    """A download's Range header."""
    TRIED["byte_range"] += 1
    try:
        span = serving.parse_range(header, size)
    except serving.RangeNotSatisfiable:
        return
    assert 0 <= span.start <= span.end < size and span.length == span.end - span.start + 1


def file_name(raw: str) -> None:
    """The client's file name, as the upload start and the download header see it."""
    TRIED["file_name"] += 1
    name = uploads.display_name(raw)
    assert name and len(name) <= 201 and "/" not in name and "\\" not in name
    assert not any(unicodedata.category(ch).startswith("C") for ch in name)
    disposition = serving.content_disposition(name, attachment=True)
    assert "\r" not in disposition and "\n" not in disposition


def tus_creation(length: str, metadata: str) -> None:
    """A tus creation's Upload-Length and Upload-Metadata."""
    TRIED["tus_creation"] += 1
    request = _Request(Tus_Resumable=tus.VERSION, Upload_Length=length, Upload_Metadata=metadata)
    try:
        found = tus.creation(request)
    except MediaRejected as exc:
        assert exc.status == 400 and str(exc)
    else:
        assert type(found["size"]) is int and found["size"] >= 0
        assert isinstance(found["filename"], str) and isinstance(found["sha256"], str)


def gguf(data: bytes) -> None:
    """A model file's header, as registration reads it before llama.cpp may."""
    TRIED["gguf"] += 1
    path = _scratch(data)
    try:
        gguf_header.read(path)
    except gguf_header.BadHeader as exc:
        assert str(exc)
    finally:
        path.unlink()


RANGE_TEXT = st.one_of(
    st.text(max_size=60),
    st.from_regex(r"\Abytes=[0-9]{0,21}-[0-9]{0,21}(,[0-9]{0,5}-[0-9]{0,5})?\Z"),
)
SIZES = st.integers(1, 1 << 40)
NUMBER_TEXT = st.one_of(
    st.text(max_size=25),
    st.from_regex(r"\A ?[+-]?[0-9]{0,21}(\.[0-9]?)? ?\Z"),
    st.integers(0, 1 << 41).map(str),
)
METADATA = st.one_of(
    st.text(max_size=300),
    st.lists(st.tuples(st.text(max_size=12), st.binary(max_size=80)), max_size=4).map(
        lambda pairs: ",".join(f"{key} {base64.b64encode(value).decode()}" for key, value in pairs)
    ),
)
# target → (function, the strategies of its arguments)
TARGETS = {
    "sniff": (sniff, (st.binary(max_size=64),)),
    "identify": (identify, (media_files(),)),
    "tus_patch": (tus_patch, (NUMBER_TEXT, NUMBER_TEXT, SIZES)),
    "byte_range": (byte_range, (RANGE_TEXT, SIZES)),
    "file_name": (file_name, (st.text(max_size=400),)),
    "tus_creation": (tus_creation, (NUMBER_TEXT, METADATA)),
    "gguf": (gguf, (gguf_files(),)),
}
