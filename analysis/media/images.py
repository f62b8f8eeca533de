"""Images: probe (Pillow, told which format to expect), thumbnail and browser preview.

Pillow's decompression-bomb check is an error here, not a warning, and width and height
have their own limits: a 100,000-pixel-wide strip is refused even though its pixel count
is small, because every later step (thumbnails, the model's preprocessing) would suffer.
"""

from __future__ import annotations

import struct
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from PIL import Image, ImageOps, UnidentifiedImageError

from analysis.media import storage
from analysis.media.types import Detected, MediaRejected

PIL_FORMATS = {
    "jpeg": "JPEG", "png": "PNG", "gif": "GIF", "webp": "WEBP", "tiff": "TIFF", "bmp": "BMP",
}  # fmt: skip
MIME = {
    "jpeg": "image/jpeg", "png": "image/png", "gif": "image/gif", "webp": "image/webp",
    "tiff": "image/tiff", "bmp": "image/bmp",
}  # fmt: skip
# Browsers show these as they are; anything else gets a JPEG preview for the viewer.
BROWSER_NATIVE = {"jpeg", "png", "gif", "webp", "bmp"}
THUMB_SIDE = 320
PREVIEW_SIDE = 2560
# What Pillow's parsers raise on a damaged file (found by fuzzing: TIFF raises TypeError and
# KeyError, others struct.error or ZeroDivisionError): all of it means "not a usable image".
BROKEN = (
    UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError,
    KeyError, struct.error, ZeroDivisionError,
)  # fmt: skip


@contextmanager
def open_image(path: Path, key: str) -> Iterator[Image.Image]:
    """Open as exactly one format, with both size limits enforced before any pixel is decoded."""
    name = PIL_FORMATS[key]
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
        _check_size(image, name)
        yield image


def _check_size(image: Image.Image, name: str) -> None:
    width, height = image.size
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
            # Checks the structure (PNG: every chunk's CRC) without decoding the pixels: the
            # web process stays light; the media task decodes for real.
            image.verify()
        except BROKEN as exc:
            raise MediaRejected(f"The {PIL_FORMATS[key]} image is damaged: {exc}") from exc
    label = f"{PIL_FORMATS[key]} image, {width}×{height}"
    if metadata["frames"] > 1:
        label += f", {metadata['frames']} frames (the first is used)"
    return Detected("image", MIME[key], label, metadata)


def key_for_mime(mime: str) -> str:
    return next(key for key, value in MIME.items() if value == mime)


def derive(asset_id, path: Path, mime: str) -> tuple[dict, dict]:
    """Decode the first frame for real; write the thumbnail (and a preview when needed)."""
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


def save_jpeg(asset_id, name: str, picture: Image.Image, side: int, quality: int = 85) -> str:
    copy = picture.copy() if max(picture.size) > side else picture
    copy.thumbnail((side, side))
    with storage.derived_writer(asset_id, name) as tmp:
        copy.convert("RGB").save(tmp, "JPEG", quality=quality)
    return name
