"""Documents: PDF (pypdf reads, pypdfium2 renders page previews) and plain UTF-8 text."""

from __future__ import annotations

import codecs
import json
import logging
import re
from pathlib import Path

from django.conf import settings
from pypdf import PdfReader
from pypdf.errors import PyPdfError

from analysis.media import images, storage
from analysis.media.types import Detected, MediaRejected

log = logging.getLogger(__name__)
BLOCK = 1024 * 1024
PAGE_SIDE = 1000
PAGE_MAX_HEIGHT = 4000
PAGE_TEXT_MAX = 100_000  # characters kept per page: a page of real text is far smaller
# What browsers take for markup (WHATWG MIME sniffing): plain text must not start like this.
MARKUP = re.compile(
    rb"^\s*<(!doctype\s+html|html|head|body|script|iframe|h1|div|font|table|a|style|title|b|"
    rb"br|p|svg|\?xml|!--)[\s>/]",
    re.IGNORECASE,
)


def _reader(path: Path) -> PdfReader:
    try:
        reader = PdfReader(path)
        if reader.is_encrypted and not reader.decrypt(""):
            raise MediaRejected("The PDF is password-protected; upload an unlocked copy.")
        len(reader.pages)  # walks the page tree: a broken one fails here, not later
    except MediaRejected:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, OSError) as exc:
        raise MediaRejected(f"The file starts like a PDF but could not be read: {exc}") from exc
    return reader


def probe_pdf(path: Path, key: str) -> Detected:
    reader = _reader(path)
    pages = len(reader.pages)
    if pages == 0:
        raise MediaRejected("The PDF has no pages.")
    metadata = {"pages": pages, "pdf_version": reader.pdf_header.removeprefix("%PDF-")}
    info = _info(reader)
    if info:
        metadata["info"] = info
    label = f"PDF document, {pages} page{'s' if pages != 1 else ''}"
    return Detected("document", "application/pdf", label, metadata)


def _info(reader: PdfReader) -> dict:
    try:
        raw = reader.metadata or {}
        wanted = ("/Title", "/Author", "/Creator", "/Producer", "/CreationDate")
        return {k.lstrip("/").lower(): str(raw[k])[:200] for k in wanted if raw.get(k)}
    except (PyPdfError, ValueError, KeyError, TypeError):
        return {}


def probe_text(path: Path, key: str) -> Detected:
    """Plain text: UTF-8 all the way through, no NUL, and not markup in disguise."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    lines = chars = offset = 0
    with open(path, "rb") as f:
        head = f.read(1024)
        if MARKUP.match(head.removeprefix(codecs.BOM_UTF8)):
            raise MediaRejected("Detected an HTML/XML document; not accepted.")
        f.seek(0)
        while block := f.read(BLOCK):
            if b"\x00" in block:
                at = offset + block.index(b"\x00")
                raise MediaRejected(f"Detected binary data (a NUL byte at offset {at}).")
            text = _decode(decoder, block, offset)
            lines, chars, offset = lines + text.count("\n"), chars + len(text), offset + len(block)
        _decode(decoder, b"", offset, final=True)
    metadata = {"encoding": "utf-8", "lines": lines + 1, "chars": chars}
    return Detected("document", "text/plain", f"Plain text, {lines + 1} lines", metadata)


def _decode(decoder, block: bytes, offset: int, final: bool = False) -> str:
    try:
        return decoder.decode(block, final=final)
    except UnicodeDecodeError as exc:
        raise MediaRejected(
            f"Detected unrecognised binary data (not UTF-8 text: byte {offset + exc.start})."
        ) from exc


def derive(asset_id, path: Path, mime: str) -> tuple[dict, dict]:
    if mime == "text/plain":
        return {}, {}
    reader = _reader(path)
    texts = []
    for number, page in enumerate(reader.pages, start=1):
        try:
            text = page.extract_text() or ""
        except Exception as exc:  # noqa: BLE001 - one odd page must not lose the others
            log.info("no text from page %s of %s: %s", number, asset_id, exc)
            text = ""
        texts.append(text[:PAGE_TEXT_MAX])
    with storage.derived_writer(asset_id, "pages.json") as tmp:
        tmp.write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")
    previews = _render(asset_id, path)
    thumb = previews[0] if previews else None
    derived = {"text": "pages.json", "pages": previews}
    if thumb:
        derived["thumbnail"] = _thumbnail(asset_id, thumb)
    return {"text_chars": sum(len(t) for t in texts)}, derived


def _render(asset_id, path: Path) -> list[str]:
    """Page previews with PDFium (the renderer Chrome uses), first pages only."""
    import pypdfium2 as pdfium

    names = []
    document = pdfium.PdfDocument(str(path))
    try:
        for index in range(min(len(document), settings.MEDIA_PDF_PREVIEW_PAGES)):
            page = document[index]
            # PAGE_SIDE wide, unless that makes a long page taller than PAGE_MAX_HEIGHT.
            width, height = page.get_width() or 1, page.get_height() or 1
            scale = min(4.0, PAGE_SIDE / width, PAGE_MAX_HEIGHT / height)
            picture = page.render(scale=scale).to_pil()
            name = f"page-{index + 1:04d}.jpg"
            names.append(images.save_jpeg(asset_id, name, picture, max(picture.size)))
            page.close()
    finally:
        document.close()
    return names


def _thumbnail(asset_id, page_name: str) -> str:
    from PIL import Image

    with Image.open(storage.derived_path(asset_id, page_name), formats=["JPEG"]) as first:
        return images.save_jpeg(asset_id, "thumb.jpg", first.convert("RGB"), images.THUMB_SIDE)
