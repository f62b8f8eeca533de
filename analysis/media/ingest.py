"""Taking bytes in: streamed writes with limits, SHA-256, and typing by content.

Nothing here trusts the file name or the client's Content-Type. `identify()` looks at the
magic bytes, then hands the file to a real probe (Pillow, PyAV, pypdf, a UTF-8 decoder) for
the format it claims to be; anything that fails is refused with a message that says what was
found. Probes read headers and a frame or two; full decoding is the media task's job.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from analysis.media import audio, documents, images, video
from analysis.media.types import Detected, MediaRejected

__all__ = ["Detected", "MediaRejected", "hash_file", "identify", "sniff"]

BLOCK = 1024 * 1024  # read and write in 1 MiB blocks: constant memory whatever the size
SNIFF_BYTES = 64


# --- hashing ---------------------------------------------------------------


def hash_file(path: Path, hasher=None) -> str:
    hasher = hasher or hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(BLOCK):
            hasher.update(block)
    return hasher.hexdigest()


# --- typing by content -------------------------------------------------------------------------

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
HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis"}
QUICKTIME_ATOMS = {b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"}


def sniff(head: bytes) -> str:
    """The format the first bytes claim, as a key for `identify`; "text" when none matched."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if head.startswith(b"RIFF"):
        return _riff(head[8:12])
    if _is_bmp(head):
        return "bmp"
    for magic, key in ((b"fLaC", "flac"), (b"OggS", "ogg"), (b"ID3", "mp3"), (b"%PDF-", "pdf")):
        if head.startswith(magic):
            return key
    if head.startswith(b"\x1aE\xdf\xa3"):
        return "matroska"
    if head[4:8] == b"ftyp":
        if head[8:12] in HEIF_BRANDS:
            raise MediaRejected(f"Detected a HEIF/AVIF image ({_brand(head)}); not accepted.")
        return "isobmff"
    if head[4:8] in QUICKTIME_ATOMS:
        return "isobmff"
    if len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        # MPEG audio frame sync; layer bits 00 mean an ADTS (AAC) stream instead of MP3.
        return "aac" if head[1] & 0x06 == 0 else "mp3"
    for magic, name in REFUSED_MAGIC:
        if head.startswith(magic):
            raise MediaRejected(f"Detected {name}; not accepted.")
    return "text"


def _riff(form: bytes) -> str:
    known = {b"WEBP": "webp", b"WAVE": "wav", b"AVI ": "avi"}
    if form in known:
        return known[form]
    raise MediaRejected(f"Detected a RIFF container of type {form!r}; not accepted.")


def _is_bmp(head: bytes) -> bool:
    # "BM" alone starts plenty of text; the reserved zeros and a known DIB header size do not.
    return (
        head.startswith(b"BM")
        and len(head) >= 18
        and head[6:10] == b"\x00\x00\x00\x00"
        and int.from_bytes(head[14:18], "little") in (12, 40, 52, 56, 64, 108, 124)
    )


def _brand(head: bytes) -> str:
    return head[8:12].decode("latin-1").strip()


def identify(path: Path) -> Detected:
    """Sniff, then probe for real. Raises MediaRejected with what was found."""
    size = path.stat().st_size
    if size == 0:
        raise MediaRejected("The file is empty (0 bytes).")
    with open(path, "rb") as f:
        head = f.read(SNIFF_BYTES)
    key = sniff(head)
    probes = {
        "jpeg": images.probe, "png": images.probe, "gif": images.probe, "webp": images.probe,
        "tiff": images.probe, "bmp": images.probe,
        "wav": audio.probe_wav, "mp3": audio.probe, "aac": audio.probe, "flac": audio.probe,
        "ogg": audio.probe, "isobmff": video.probe, "matroska": video.probe, "avi": video.probe,
        "pdf": documents.probe_pdf, "text": documents.probe_text,
    }  # fmt: skip
    return probes[key](path, key)
