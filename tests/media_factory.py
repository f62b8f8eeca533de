"""Small media made on the fly for the tests (no binary fixtures are committed).

Everything here is tiny on purpose: 2-core CI machines encode each clip in milliseconds.
"""

from __future__ import annotations

import io
import math
import os
import struct
import tempfile
import wave
from fractions import Fraction

import av
import numpy as np
from PIL import Image

IMAGE_FORMATS = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "tiff": "TIFF", "bmp": "BMP"}


def image(fmt: str = "png", size: tuple[int, int] = (64, 48), color=(200, 40, 40)) -> bytes:
    picture = Image.new("RGB", size, color)
    # A gradient, so that two images of different colours never hash alike by accident.
    for x in range(0, size[0], 4):
        picture.putpixel((x, 0), (x % 256, 0, 0))
    out = io.BytesIO()
    picture.save(out, IMAGE_FORMATS.get(fmt, fmt.upper()))
    return out.getvalue()


def gif(frames: int = 3, size: tuple[int, int] = (32, 32)) -> bytes:
    pictures = [Image.new("P", size, i * 40) for i in range(frames)]
    out = io.BytesIO()
    pictures[0].save(out, "GIF", save_all=True, append_images=pictures[1:], duration=100)
    return out.getvalue()


def wav(seconds: float = 0.5, rate: int = 8000, channels: int = 1) -> bytes:
    n = int(seconds * rate)
    tone = [int(12000 * math.sin(2 * math.pi * 440 * i / rate)) for i in range(n)]
    frames = b"".join(struct.pack("<" + "h" * channels, *([s] * channels)) for s in tone)
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(frames)
    return out.getvalue()


def _tone(rate: int, seconds: float, channels: int) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    wave_ = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    return np.tile(wave_, (channels, 1))


def audio(container: str, codec: str, rate: int = 48000, seconds: float = 0.5, **opts) -> bytes:
    """Encode a short tone with PyAV: ("mp3", "libmp3lame"), ("flac", "flac"), ("ogg", "libopus"),
    ("ipod", "aac") for M4A."""
    out = io.BytesIO()
    with av.open(out, "w", format=container) as box:
        stream = box.add_stream(codec, rate=rate, layout="stereo")
        _encode_audio(box, stream, rate, seconds)
    return out.getvalue()


def _encode_audio(box, stream, rate: int, seconds: float) -> None:
    samples = _tone(rate, seconds, 2)
    frame_size = stream.codec_context.frame_size or 1024
    fmt = stream.codec_context.format.name
    for start in range(0, samples.shape[1], frame_size):
        block = np.ascontiguousarray(samples[:, start : start + frame_size])
        frame = av.AudioFrame.from_ndarray(block, format="fltp", layout="stereo")
        frame.sample_rate = rate
        frame.pts = start
        frame.time_base = Fraction(1, rate)
        if fmt != "fltp":
            frame = _resample(frame, stream)
        for f in frame if isinstance(frame, list) else [frame]:
            box.mux(stream.encode(f))
    box.mux(stream.encode(None))


def _resample(frame, stream):
    resampler = av.AudioResampler(format=stream.codec_context.format.name, layout="stereo")
    return resampler.resample(frame)


def video(
    container: str = "mp4",
    codec: str = "libx264",
    *,
    seconds: float = 1.0,
    fps: int = 10,
    size: tuple[int, int] = (64, 48),
    with_audio: bool = False,
    faststart: bool = False,
) -> bytes:
    """A clip whose frames change colour over time (so posters and strips differ).

    faststart moves the index to the front, which needs a real file to rewrite.
    """
    if faststart:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, f"clip.{container}")
            _write_video(path, container, codec, seconds, fps, size, with_audio, faststart)
            with open(path, "rb") as f:
                return f.read()
    out = io.BytesIO()
    _write_video(out, container, codec, seconds, fps, size, with_audio, faststart)
    return out.getvalue()


def _write_video(out, container, codec, seconds, fps, size, with_audio, faststart) -> None:
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(out, "w", format=container, options=options) as box:
        stream = box.add_stream(codec, rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        if codec == "libx265":
            stream.options = {"x265-params": "log-level=none"}
        sound = box.add_stream(_audio_codec(container), rate=48000) if with_audio else None
        for i in range(int(seconds * fps)):
            level = int(255 * i / max(1, seconds * fps - 1))
            pixels = np.full((size[1], size[0], 3), (level, 80, 255 - level), dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            box.mux(stream.encode(frame))
        box.mux(stream.encode(None))
        if sound is not None:
            _encode_audio(box, sound, 48000, seconds)


def _audio_codec(container: str) -> str:
    return {"webm": "libopus", "matroska": "libopus", "avi": "libmp3lame"}.get(container, "aac")


def pdf(pages: list[str]) -> bytes:
    """A minimal hand-written PDF with one line of Helvetica text per page."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>"]
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(len(pages)))
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode())
    font = 3 + 2 * len(pages)
    for i, text in enumerate(pages):
        content = f"BT /F1 24 Tf 40 700 Td ({text}) Tj ET".encode()
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 300 800] /Contents {4 + 2 * i} 0 R "
            f"/Resources << /Font << /F1 {font} 0 R >> >> >>".encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content))
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n%s\nendobj\n" % (number, body))
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    out.write(b"".join(b"%010d 00000 n \n" % offset for offset in offsets))
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()
