"""Media decoded the way the model takes it: RGB frames, mono float PCM, page text and images.

Video is never decoded whole: each sampled timestamp is reached by decoding on within the
GOP at hand, or by a seek to the keyframe before it (video.FrameReader). Audio is resampled
by PyAV (its wheels bundle FFmpeg) to the projector's rate. PDF text comes from pypdf; page
images from pypdfium2 (PDFium, BSD licensed, a manylinux wheel with no system dependency),
only when the model has vision.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Pillow refuses images above this many pixels (decompression bombs) — 16k × 16k.
MAX_IMAGE_PIXELS = 256_000_000
IMAGE_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF")


class MediaDecodeError(ValueError):
    pass


@dataclass(frozen=True)
class AVInfo:
    duration: float  # seconds (0 when unknown)
    has_video: bool
    has_audio: bool
    width: int = 0
    height: int = 0


def _fit(rgb: np.ndarray, max_side: int) -> np.ndarray:
    """Shrink so the longer side is at most max_side (the projector resizes again anyway:
    this only bounds the memory of a 50-megapixel photo)."""
    height, width = rgb.shape[:2]
    if max(height, width) <= max_side:
        return rgb
    from PIL import Image

    image = Image.fromarray(rgb)
    image.thumbnail((max_side, max_side), Image.Resampling.BICUBIC)
    return np.asarray(image)


def load_image(path: Path, max_side: int) -> np.ndarray:
    """An RGB array (height × width × 3) of the image, EXIF rotation applied."""
    from PIL import Image, ImageOps

    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    try:
        with Image.open(path, formats=IMAGE_FORMATS) as image:
            image = ImageOps.exif_transpose(image)
            return _fit(np.asarray(image.convert("RGB")), max_side)
    except (OSError, Image.DecompressionBombError) as exc:
        raise MediaDecodeError(f"{path.name} could not be read as an image: {exc}") from exc


def av_info(path: Path) -> AVInfo:
    import av

    try:
        with av.open(str(path)) as container:
            duration = _duration(container)
            video = container.streams.video[0] if container.streams.video else None
            return AVInfo(
                duration=duration,
                has_video=video is not None,
                has_audio=bool(container.streams.audio),
                width=video.codec_context.width if video else 0,
                height=video.codec_context.height if video else 0,
            )
    except av.FFmpegError as exc:
        raise MediaDecodeError(f"{path.name} could not be read: {exc}") from exc


def _duration(container) -> float:
    if container.duration:
        return container.duration / 1_000_000  # av.time_base
    for stream in (*container.streams.video, *container.streams.audio):
        if stream.duration and stream.time_base:
            return float(stream.duration * stream.time_base)
    return 0.0


def video_frames(path: Path, timestamps: list[float], max_side: int) -> list[np.ndarray]:
    """One RGB frame per timestamp (ascending): the first frame at or after it. The same
    reader as the media worker's strip (video.FrameReader): decode on within a GOP, seek
    across GOPs."""
    import av

    from analysis.media.types import MediaRejected
    from analysis.media.video import FrameReader

    try:
        with av.open(str(path)) as container:
            reader = FrameReader(container, container.streams.video[0])
            return [_max_side_frame(reader.at(t), max_side) for t in timestamps]
    except (av.FFmpegError, MediaRejected) as exc:
        raise MediaDecodeError(f"{path.name}: {exc}") from exc


def _max_side_frame(frame, max_side: int) -> np.ndarray:
    width, height = frame.width, frame.height
    scale = min(1.0, max_side / max(width, height))
    if scale < 1.0:
        # Let FFmpeg's scaler shrink it: faster than converting the full frame first.
        width, height = max(2, round(width * scale)), max(2, round(height * scale))
        return frame.to_ndarray(format="rgb24", width=width, height=height)
    return frame.to_ndarray(format="rgb24")


def audio_pcm(path: Path, rate: int, start: float = 0.0, end: float | None = None) -> np.ndarray:
    """Mono float32 samples at `rate` Hz of [start, end) seconds of the first audio track."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise MediaDecodeError(f"{path.name} has no audio track")
            return _decode_pcm(container, container.streams.audio[0], rate, start, end)
    except av.FFmpegError as exc:
        raise MediaDecodeError(f"{path.name} could not be decoded as audio: {exc}") from exc


def audio_spans(path: Path, rate: int, spans: list[tuple[float, float]]) -> list[np.ndarray]:
    """PCM for each (start, end) span. Spans that cover most of their range (a clip's
    segments) are cut from one decode; sparse ones (a long recording sampled) each seek."""
    if not spans:
        return []
    first, last = min(a for a, _ in spans), max(b for _, b in spans)
    if sum(b - a for a, b in spans) < 0.5 * (last - first):
        return [audio_pcm(path, rate, a, b) for a, b in spans]
    pcm = audio_pcm(path, rate, first, last)
    return [
        np.ascontiguousarray(pcm[round((a - first) * rate) : round((b - first) * rate)])
        for a, b in spans
    ]


def _decode_pcm(container, stream, rate: int, start: float, end: float | None) -> np.ndarray:
    import av

    if start > 0:
        container.seek(int(start / stream.time_base), stream=stream, backward=True)
    resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
    parts: list[np.ndarray] = []
    first_time: float | None = None
    for frame in container.decode(stream):
        if first_time is None:
            first_time = frame.time if frame.time is not None else 0.0
        parts.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(frame))
        if end is not None and frame.time is not None and frame.time >= end:
            break
    parts.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(None))
    pcm = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
    # The seek lands on a packet at or before `start`: cut the head and the tail to size.
    head = max(0, round((start - (first_time or 0.0)) * rate))
    tail = None if end is None else head + max(0, round((end - start) * rate))
    return np.ascontiguousarray(pcm[head:tail], dtype=np.float32)


def pdf_page_texts(path: Path, max_pages: int) -> tuple[list[str], int]:
    """The text of the first max_pages pages, and the document's page count."""
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(str(path))
        count = len(reader.pages)
        texts = [(page.extract_text() or "").strip() for page in reader.pages[:max_pages]]
    except (PyPdfError, OSError, ValueError) as exc:
        raise MediaDecodeError(f"{path.name} could not be read as a PDF: {exc}") from exc
    return texts, count


def pdf_page_images(path: Path, pages: list[int], max_side: int) -> list[np.ndarray]:
    """RGB renders of the given pages (1-based numbers), longer side max_side pixels."""
    import pypdfium2

    document = pypdfium2.PdfDocument(str(path))
    try:
        images = []
        for number in pages:
            page = document[number - 1]
            width, height = page.get_size()  # in points (1/72 in)
            bitmap = page.render(scale=max_side / max(width, height, 1))
            images.append(np.asarray(bitmap.to_pil().convert("RGB")))
            page.close()
        return images
    finally:
        document.close()
