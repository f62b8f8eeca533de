"""Images: sniff, probe (Pillow, told which format to expect), thumbnail, preview, model input.

Pillow's decompression-bomb check is an error here, not a warning, and width and height
have their own limits: a 100,000-pixel-wide strip is refused even though its pixel count
is small, because every later step (thumbnails, the model's preprocessing) would suffer.
Pillow is imported inside the functions: they run in the media worker's sandbox (and the
inference worker), never in the web process.
"""

from __future__ import annotations

import struct
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings

from analysis.media import storage
from analysis.media.types import Detected, MediaDecodeError, MediaKind, MediaRejected, Sniffed

# key -> (Pillow's format name, MIME type, download extension)
FORMATS = {
    "jpeg": ("JPEG", "image/jpeg", ".jpg"), "png": ("PNG", "image/png", ".png"),
    "gif": ("GIF", "image/gif", ".gif"), "webp": ("WEBP", "image/webp", ".webp"),
    "tiff": ("TIFF", "image/tiff", ".tif"), "bmp": ("BMP", "image/bmp", ".bmp"),
}  # fmt: skip
# Browsers show these as they are; anything else gets a JPEG preview for the viewer.
BROWSER_NATIVE = {"jpeg", "png", "gif", "webp", "bmp"}
HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis"}
THUMB_SIDE = 320
PREVIEW_SIDE = 2560
# What Pillow's parsers raise on a damaged file (found by fuzzing: TIFF raises TypeError and
# KeyError, others struct.error or ZeroDivisionError): all of it means "not a usable image".
# (UnidentifiedImageError is an OSError.)
BROKEN = (
    OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, KeyError, struct.error,
    ZeroDivisionError,
)  # fmt: skip


def sniff(head: bytes) -> Sniffed | None:
    key = _key(head)
    if key is None:
        return None
    name, mime, extension = FORMATS[key]
    return Sniffed("image", key, mime, f"{name} image", extension)


def _key(head: bytes) -> str | None:
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "webp"
    if _is_bmp(head):
        return "bmp"
    if head[4:8] == b"ftyp" and head[8:12] in HEIF_BRANDS:
        brand = head[8:12].decode("latin-1").strip()
        raise MediaRejected(f"Detected a HEIF/AVIF image ({brand}); not accepted.")
    return None


def _is_bmp(head: bytes) -> bool:
    # "BM" alone starts plenty of text; the reserved zeros and a known DIB header size do not.
    return (
        head.startswith(b"BM")
        and len(head) >= 18
        and head[6:10] == b"\x00\x00\x00\x00"
        and int.from_bytes(head[14:18], "little") in (12, 40, 52, 56, 64, 108, 124)
    )


@contextmanager
def open_image(path: Path, key: str) -> Iterator:
    """Open as exactly one format, with both size limits enforced before any pixel is decoded.

    The one place Pillow's process-wide pixel limit is set (from the setting)."""
    from PIL import Image

    name = FORMATS[key][0]
    Image.MAX_IMAGE_PIXELS = settings.MEDIA_IMAGE_MAX_PIXELS
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(path, formats=[name])
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            # Pillow's own text quotes its limit or twice it (warning or error): one limit here.
            raise MediaRejected(_too_many_pixels(name)) from exc
        except BROKEN as exc:
            why = str(exc).replace(str(path), "the file")  # never show a server path
            raise MediaRejected(
                f"The file starts like a {name} image but is not one: {why}"
            ) from exc
    with image:
        check_size(*image.size, name)
        yield image


def check_size(width: int, height: int, name: str) -> None:
    side = settings.MEDIA_IMAGE_MAX_SIDE
    if width > side or height > side:
        raise MediaRejected(
            f"Refused a {name} image of {width}×{height} pixels: "
            f"each side may be at most {side} pixels."
        )
    if width * height > settings.MEDIA_IMAGE_MAX_PIXELS:
        raise MediaRejected(_too_many_pixels(name, f" of {width}×{height} pixels"))


def _too_many_pixels(name: str, size: str = "") -> str:
    return (
        f"Refused a {name} image{size} (a possible decompression bomb): at most "
        f"{settings.MEDIA_IMAGE_MAX_PIXELS:,} pixels are accepted."
    )


def probe(path: Path, key: str) -> Detected:
    with open_image(path, key) as image:
        width, height = image.size
        try:
            metadata = {
                "width": width,
                "height": height,
                "mode": image.mode,
                "frames": getattr(image, "n_frames", 1),  # walks every frame's header
            }
            image.verify()  # the structure (PNG: every chunk's CRC); `derive` decodes
        except BROKEN as exc:
            raise MediaRejected(f"The {FORMATS[key][0]} image is damaged: {exc}") from exc
    label = f"{FORMATS[key][0]} image, {width}×{height}"
    if metadata["frames"] > 1:
        label += f", {metadata['frames']} frames (the first is used)"
    return Detected("image", FORMATS[key][1], label, metadata)


def key_for_mime(mime: str) -> str:
    return next(key for key, value in FORMATS.items() if value[1] == mime)


def derive(asset_id, path: Path, mime: str) -> tuple[dict, dict]:
    """Decode the first frame for real; write the thumbnail (and a preview when needed)."""
    from PIL import ImageOps

    key = key_for_mime(mime)
    with open_image(path, key) as image:
        image.seek(0)
        if key == "jpeg":
            image.draft("RGB", (PREVIEW_SIDE, PREVIEW_SIDE))  # decode at a reduced scale
        try:
            picture = ImageOps.exif_transpose(image).convert("RGB")
        except BROKEN as exc:
            raise MediaRejected(f"The image could not be decoded: {exc}") from exc
    derived = {"thumbnail": save_jpeg(asset_id, "thumb.jpg", picture, THUMB_SIDE)}
    if key not in BROWSER_NATIVE:
        derived["preview"] = save_jpeg(asset_id, "preview.jpg", picture, PREVIEW_SIDE)
    return {}, derived


def save_jpeg(asset_id, name: str, picture, side: int, quality: int = 85) -> str:
    copy = picture.copy() if max(picture.size) > side else picture
    copy.thumbnail((side, side))
    with storage.derived_writer(asset_id, name) as tmp:
        copy.convert("RGB").save(tmp, "JPEG", quality=quality)
    return name


def thumbnail_from(asset_id, name: str, side: int = THUMB_SIDE) -> str:
    """thumb.jpg made from a derived JPEG (a poster, a first page)."""
    from PIL import Image

    with Image.open(storage.derived_path(asset_id, name), formats=["JPEG"]) as source:
        return save_jpeg(asset_id, "thumb.jpg", source.convert("RGB"), side)


# --- what the model receives ---------------------------------------------------------------


def fit(rgb, max_side: int):
    """Shrink so the longer side is at most max_side (the projector resizes again anyway:
    this only bounds the memory of a 50-megapixel photo)."""
    import numpy as np
    from PIL import Image

    height, width = rgb.shape[:2]
    if max(height, width) <= max_side:
        return rgb
    image = Image.fromarray(rgb)
    image.thumbnail((max_side, max_side), Image.Resampling.BICUBIC)
    return np.asarray(image)


def load_image(path: Path, mime: str, max_side: int):
    """An RGB array (height × width × 3) of the image, EXIF rotation applied."""
    import numpy as np
    from PIL import ImageOps

    if not mime:  # a descriptor made without one: the magic bytes say
        with open(path, "rb") as f:
            mime = FORMATS.get(_key(f.read(64)) or "png")[1]
    try:
        with open_image(path, key_for_mime(mime)) as image:
            return fit(np.asarray(ImageOps.exif_transpose(image).convert("RGB")), max_side)
    except (MediaRejected, *BROKEN) as exc:
        raise MediaDecodeError(f"{path.name} could not be read as an image: {exc}") from exc


def section(item, number: int, caps, limits, plan):
    from analysis.inference.units import FIXED, Section, Unit, require

    require(caps.vision, "images", item)
    unit = Unit("image", "", 0, {}, bitmap_id=f"{item.sha256}:image:{limits.image_max_side}")

    def load(units: list) -> None:
        unit.payload = load_image(item.path, item.mime, limits.image_max_side)

    return Section(item, f'Image {number} "{item.name}":', [unit], FIXED, load)


KIND = MediaKind(
    name="image",
    label="Image",
    sniff=sniff,
    probe=probe,
    derive=derive,
    template="analysis/media/kinds/image.html",
    section=section,
    needs=frozenset({"vision"}),
    extensions={mime: extension for _, mime, extension in FORMATS.values()},
)
