"""Fuzz targets: what the site does with bytes and headers straight from a client.

Shared by tests/test_fuzz.py (Hypothesis, a few hundred inputs each, in CI) and bench/fuzz.py
(the same properties for as long as it is given). Each target calls the real code and lets
only its documented refusal through; any other exception is a finding. Seeds are real samples
of every accepted kind (tests/media_samples.py), mutated where the parsers look hardest.
"""

from __future__ import annotations

import json
import tempfile
import unicodedata
from collections import Counter
from functools import cache
from pathlib import Path

from hypothesis import strategies as st

from analysis import jsoninput
from analysis.inference import gguf_header
from analysis.media import chunks, registry, serving, uploads
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


def content_range(header: str, size: int) -> None:
    """The chunk upload's Content-Range header."""
    TRIED["content_range"] += 1
    try:
        first, last = chunks.parse_content_range(header, size)
    except MediaRejected as exc:
        assert exc.status in (400, 413)
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


def upload_json(value) -> None:
    """Any JSON value as the body of the upload start request."""
    TRIED["upload_json"] += 1
    data = value if isinstance(value, dict) else {"size": value, "filename": value}
    try:
        size = jsoninput.whole_number(data, "size")
        name = jsoninput.string(data, "filename", required=True)
    except jsoninput.BadInput as exc:
        assert exc.field in ("size", "filename") and exc.status == 400
    else:
        assert type(size) is int and size >= 0 and isinstance(name, str)


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
    st.from_regex(r"\Abytes ?[0-9]{0,21}-[0-9]{0,21}/[0-9]{0,21}\Z"),
    st.from_regex(r"\Abytes=[0-9]{0,21}-[0-9]{0,21}(,[0-9]{0,5}-[0-9]{0,5})?\Z"),
)
SIZES = st.integers(1, 1 << 40)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=300),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=10,
)
# target → (function, the strategies of its arguments)
TARGETS = {
    "sniff": (sniff, (st.binary(max_size=64),)),
    "identify": (identify, (media_files(),)),
    "content_range": (content_range, (RANGE_TEXT, SIZES)),
    "byte_range": (byte_range, (RANGE_TEXT, SIZES)),
    "file_name": (file_name, (st.text(max_size=400),)),
    "upload_json": (upload_json, (JSON,)),
    "gguf": (gguf, (gguf_files(),)),
}
