"""Documents: PDF (pypdf reads, pypdfium2 renders page previews) and plain UTF-8 text.

pypdf and pypdfium2 are imported inside the functions that parse: those run in the media
worker's sandbox and the inference worker, never in the web process.
"""

from __future__ import annotations

import codecs
import json
import logging
import re
from pathlib import Path

from django.conf import settings

from analysis.media import images, storage
from analysis.media.types import Detected, MediaDecodeError, MediaKind, MediaRejected, Sniffed

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


def sniff(head: bytes) -> Sniffed | None:
    if head.startswith(b"%PDF-"):
        return Sniffed("document", "pdf", "application/pdf", "PDF document", ".pdf")
    return None


def sniff_text(head: bytes) -> Sniffed | None:
    """The fallback: what no other kind claimed may be plain text (the probe reads it all)."""
    if MARKUP.match(head.removeprefix(codecs.BOM_UTF8)):
        raise MediaRejected("Detected an HTML/XML document; not accepted.")
    if b"\x00" in head:
        raise MediaRejected(f"Detected binary data (a NUL byte at offset {head.index(0)}).")
    return Sniffed("document", "text", "text/plain", "Plain text", ".txt")


def _reader(path: Path):
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

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


def probe(path: Path, key: str) -> Detected:
    return probe_text(path) if key == "text" else probe_pdf(path)


def probe_pdf(path: Path) -> Detected:
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


def _info(reader) -> dict:
    from pypdf.errors import PyPdfError

    try:
        raw = reader.metadata or {}
        wanted = ("/Title", "/Author", "/Creator", "/Producer", "/CreationDate")
        return {k.lstrip("/").lower(): str(raw[k])[:200] for k in wanted if raw.get(k)}
    except (PyPdfError, ValueError, KeyError, TypeError):
        return {}


def probe_text(path: Path) -> Detected:
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
    derived = {"text": "pages.json", "pages": previews}
    if previews:
        derived["thumbnail"] = images.thumbnail_from(asset_id, previews[0])
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


# --- the media page --------------------------------------------------------------------------

TEXT_PREVIEW_BYTES = 256 * 1024
PDF_PAGES_SHOWN = 200


def page(asset) -> dict:
    if asset.mime == "text/plain":
        preview, cut = text_preview(asset)
        return {"text_preview": preview, "text_cut": cut}
    return {"pages": pdf_pages(asset) if asset.is_ready else []}


def pdf_pages(asset) -> list[dict]:
    texts: list[str] = []
    name = asset.derived.get("text")
    if name:
        try:
            texts = json.loads(storage.read_derived(asset.id, name).decode("utf-8"))
        except (OSError, ValueError):
            texts = []
    previews = asset.derived.get("pages", [])
    count = min(max(len(texts), len(previews)), PDF_PAGES_SHOWN)
    return [
        {
            "number": i + 1,
            "preview": previews[i] if i < len(previews) else None,
            "text": texts[i] if i < len(texts) else "",
        }
        for i in range(count)
    ]


def text_preview(asset) -> tuple[str, bool]:
    try:
        head = storage.read_original_head(asset.case_id, asset.id, TEXT_PREVIEW_BYTES)
    except OSError:
        return "", False
    return head.decode("utf-8", errors="replace"), asset.size > TEXT_PREVIEW_BYTES


# --- what the model receives ---------------------------------------------------------------

# Plain-text documents have no pages: they are cut in parts of this many characters.
TEXT_PART = 4000


def pdf_page_texts(path: Path, max_pages: int) -> tuple[list[str], int]:
    """The text of the first max_pages pages, and the document's page count."""
    try:
        reader = _reader(path)
        count = len(reader.pages)
        texts = [(p.extract_text() or "").strip() for p in reader.pages[:max_pages]]
    except (MediaRejected, OSError, ValueError) as exc:
        raise MediaDecodeError(f"{path.name} could not be read as a PDF: {exc}") from exc
    return texts, count


def pdf_page_images(path: Path, pages: list[int], max_side: int) -> list:
    """RGB renders of the given pages (1-based numbers), longer side max_side pixels."""
    import numpy as np
    import pypdfium2

    document = pypdfium2.PdfDocument(str(path))
    try:
        renders = []
        for number in pages:
            page = document[number - 1]
            width, height = page.get_size()  # in points (1/72 in)
            bitmap = page.render(scale=max_side / max(width, height, 1))
            renders.append(np.asarray(bitmap.to_pil().convert("RGB")))
            page.close()
        return renders
    finally:
        document.close()


def section(item, number: int, caps, limits, plan):
    from analysis.inference.units import PAGES, Section, Unit

    with open(item.path, "rb") as f:
        is_pdf = f.read(5) == b"%PDF-"
    if not is_pdf:
        return _text_section(item, number, plan)
    planned = plan.get("pages", []) if plan is not None else []
    texts, count = pdf_page_texts(item.path, max([limits.doc_max_pages, *planned]))
    pages = planned if plan is not None else list(range(1, len(texts) + 1))
    if plan is not None:
        renders = plan.get("page_images", []) if caps.vision else []
    else:
        renders = pages[: limits.page_images] if caps.vision else []
    units = []
    for number_ in pages:
        units.append(
            Unit("text", f"[page {number_}]\n{texts[number_ - 1]}", number_, {"pages": number_})
        )
        if number_ in renders:
            image = Unit("image", f"[page {number_} image] ", number_, {"page_images": number_})
            image.optional = True
            image.bitmap_id = f"{item.sha256}:page:{number_}@{limits.page_max_side}"
            units.append(image)

    def load(todo: list) -> None:
        numbers = [u.ref["page_images"] for u in todo]
        for unit, rgb in zip(
            todo, pdf_page_images(item.path, numbers, limits.page_max_side), strict=True
        ):
            unit.payload = rgb

    title = f'Document {number} "{item.name}" ({count} pages):'
    return Section(item, title, units, PAGES, load)


def _text_section(item, number: int, plan):
    """Plain text in parts of TEXT_PART characters, so the budget can drop trailing parts."""
    from analysis.inference.units import PAGES, Section, Unit

    text = item.path.read_text(encoding="utf-8", errors="replace")
    parts = [text[i : i + TEXT_PART] for i in range(0, max(len(text), 1), TEXT_PART)]
    numbers = plan.get("parts", []) if plan is not None else range(1, len(parts) + 1)
    units = [Unit("text", f"[part {n}]\n{parts[n - 1]}", n, {"parts": n}) for n in numbers]
    return Section(item, f'Document {number} "{item.name}" ({len(parts)} parts):', units, PAGES)


KIND = MediaKind(
    name="document",
    label="Document",
    sniff=sniff,
    probe=probe,
    derive=derive,
    template="analysis/media/kinds/document.html",
    page=page,
    section=section,
    fallback=sniff_text,
    extensions={"application/pdf": ".pdf", "text/plain": ".txt"},
)
