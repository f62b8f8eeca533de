"""The media kinds the site accepts, and the questions everything else asks about them.

Each kind lives in one module (images, audio, video, dicom, documents) and declares a
MediaKind (types.py). Importing this module loads no decoder: a kind imports its decoder
inside the functions that run in the media worker's sandbox, so the web process can sniff.
"""

from __future__ import annotations

from pathlib import Path

from analysis.media import audio, dicom, documents, images, video
from analysis.media.types import MediaKind, MediaRejected, Sniffed

# Enough for every magic number we know, DICOM's included (its marker sits at byte 128).
SNIFF_BYTES = 4096

# Formats we recognise but do not accept, so the refusal can name them.
REFUSED_MAGIC = [
    (b"PK\x03\x04", "a ZIP archive (or an Office document such as DOCX/XLSX)"),
    (b"\x7fELF", "a Linux executable (ELF)"),
    (b"MZ", "a Windows executable"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"Rar!", "a RAR archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"\xd0\xcf\x11\xe0", "an old Microsoft Office document"),
    (b"%!PS", "a PostScript file"),
    (b"{\\rtf", "an RTF document"),
    (b"8BPS", "a Photoshop document"),
    (b"\x00\x00\x01\x00", "a Windows icon"),
    (b"\x00\x00\x00\x0cjP  ", "a JPEG 2000 image"),
    (b"\xca\xfe\xba\xbe", "a Java class or macOS executable"),
]

# In the order their sniffs are tried: DICOM first (its preamble may hold anything).
_KINDS: dict[str, MediaKind] = {
    k.name: k for k in (dicom.KIND, images.KIND, audio.KIND, video.KIND, documents.KIND)
}


def register(kind: MediaKind) -> None:
    """Add a kind (tried after those already known, before any fallback)."""
    if kind.name in _KINDS:
        raise ValueError(f"a media kind named {kind.name!r} is already registered")
    _KINDS[kind.name] = kind


def unregister(name: str) -> None:
    _KINDS.pop(name, None)


def kinds() -> list[MediaKind]:
    return list(_KINDS.values())


def get(name: str) -> MediaKind:
    try:
        return _KINDS[name]
    except KeyError:
        raise MediaRejected(f"Unknown media kind {name!r}.") from None


def label(name: str) -> str:
    kind = _KINDS.get(name)
    return kind.label if kind else name.capitalize()


def sniff(head: bytes) -> Sniffed:
    """What the first bytes are, by magic numbers alone; MediaRejected when not accepted."""
    if not head:
        raise MediaRejected("The file is empty (0 bytes).")
    for kind in _KINDS.values():
        if found := kind.sniff(head):
            return found
    for magic, name in REFUSED_MAGIC:
        if head.startswith(magic):
            raise MediaRejected(f"Detected {name}; not accepted.")
    if head.startswith(b"RIFF"):
        raise MediaRejected(f"Detected a RIFF container of type {head[8:12]!r}; not accepted.")
    for kind in _KINDS.values():
        if kind.fallback is not None and (found := kind.fallback(head)):
            return found
    raise MediaRejected("Detected unrecognised binary data; not accepted.")


def sniff_file(path: Path) -> Sniffed:
    with open(path, "rb") as f:
        return sniff(f.read(SNIFF_BYTES))


def refused_preamble(head: bytes) -> str | None:
    """The refused format a block of bytes starts like (a polyglot's hidden half), or None."""
    return next((name for magic, name in REFUSED_MAGIC if head.startswith(magic)), None)


def extension(mime: str) -> str:
    """The extension a download of this type is named with (dot included)."""
    for kind in _KINDS.values():
        if mime in kind.extensions:
            return kind.extensions[mime]
    return ".bin"


def needs(names) -> set[str]:
    """The model capabilities the given kinds take together."""
    return {need for name in set(names) if name in _KINDS for need in _KINDS[name].needs}
