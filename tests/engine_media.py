"""Small real media files made on the fly: PNG, WAV, MP3, MP4 (with or without audio), PDF.

Generated in the test (PyAV, Pillow, stdlib) rather than committed: each is a few KB, takes
milliseconds, and says in code exactly what it contains.
"""

from __future__ import annotations

import hashlib
import wave
from fractions import Fraction
from pathlib import Path

import numpy as np

from analysis.inference.types import MediaInput


def tone(seconds: float, rate: int, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def png_bytes(width: int = 96, height: int = 64) -> bytes:
    import io

    from PIL import Image

    x = np.linspace(0, 255, width, dtype=np.uint8)
    y = np.linspace(0, 255, height, dtype=np.uint8)
    rgb = np.stack(
        [
            np.tile(x, (height, 1)),
            np.tile(y[:, None], (1, width)),
            np.full((height, width), 128, np.uint8),
        ],
        axis=-1,
    )
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, format="PNG")
    return out.getvalue()


def png(path: Path, width: int = 96, height: int = 64) -> Path:
    path.write_bytes(png_bytes(width, height))
    return path


def wav(path: Path, seconds: float = 1.0, rate: int = 44100) -> Path:
    samples = (tone(seconds, rate) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())
    return path


def mp3(path: Path, seconds: float = 1.0, rate: int = 44100) -> Path:
    import av

    with av.open(str(path), "w", format="mp3") as container:
        stream = container.add_stream("libmp3lame", rate=rate, layout="mono")
        _write_audio(container, stream, tone(seconds, rate), rate)
    return path


def _write_audio(container, stream, pcm: np.ndarray, rate: int) -> None:
    import av

    step = stream.codec_context.frame_size or 1024
    for start in range(0, len(pcm), step):
        block = pcm[start : start + step]
        frame = av.AudioFrame.from_ndarray(block.reshape(1, -1), format="flt", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)


def mp4(path: Path, seconds: float = 4.0, fps: int = 4, audio: bool = True,
        size: tuple[int, int] = (64, 48)) -> Path:  # fmt: skip
    """A clip whose colour changes every second (so frames differ), with a 440 Hz tone."""
    import av

    width, height = size
    with av.open(str(path), "w", format="mp4") as container:
        video = container.add_stream("libx264", rate=fps)  # H.264: what uploads accept
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        sound = container.add_stream("aac", rate=16000, layout="mono") if audio else None
        for i in range(int(seconds * fps)):
            rgb = np.zeros((height, width, 3), np.uint8)
            rgb[..., i // fps % 3] = 200
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = i
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
        if sound is not None:
            _write_audio(container, sound, tone(seconds, 16000), 16000)
    return path


def pdf(path: Path, pages: list[str]) -> Path:
    """A minimal hand-written PDF: one line of Helvetica text per page."""
    objects = ["<< /Type /Catalog /Pages 2 0 R >>", ""]
    kids = []
    font = 3 + 2 * len(pages)
    for i, text in enumerate(pages):
        page, content = 3 + 2 * i, 4 + 2 * i
        kids.append(f"{page} 0 R")
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 300 200] "
            f"/Resources << /Font << /F1 {font} 0 R >> >> /Contents {content} 0 R >>"
        )
        stream = f"BT /F1 14 Tf 20 100 Td ({text}) Tj ET"
        objects.append(f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream")
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(pages)} >>"
    objects.append("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    out, offsets = b"%PDF-1.4\n", []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode()
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{o:010d} 00000 n \n" for o in offsets).encode()
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    path.write_bytes(out)
    return path


def media(path: Path, kind: str) -> MediaInput:
    """The engine's descriptor of a file (what the pipeline builds from a MediaAsset)."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return MediaInput(id=digest[:8], kind=kind, path=path, sha256=digest, name=path.name)
