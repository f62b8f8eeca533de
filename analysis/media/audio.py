"""Audio: probe (PyAV, plus our own reading of a WAV header), duration and a waveform image."""

from __future__ import annotations

import struct
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw

from analysis.media import storage
from analysis.media.types import Detected, MediaRejected

FORMATS = {
    "wav": ("audio/wav", "WAV"), "mp3": ("audio/mpeg", "MP3"), "aac": ("audio/aac", "AAC"),
    "flac": ("audio/flac", "FLAC"), "ogg": ("audio/ogg", "Ogg"), "mp4": ("audio/mp4", "M4A"),
    "mov": ("audio/mp4", "M4A"), "webm": ("audio/webm", "WebM audio"),
    "matroska": ("audio/x-matroska", "Matroska audio"), "avi": ("audio/x-msvideo", "AVI audio"),
}  # fmt: skip
MAX_PACKETS = 500
WAVEFORM_SIZE = (1200, 160)
WAVEFORM_RATE = 8000  # peaks need no more than this; resampling first keeps the work small


def probe(path: Path, key: str) -> Detected:
    from analysis.media.video import open_container

    with open_container(path) as container:
        if container.streams.video and key == "ogg":
            raise MediaRejected("Detected an Ogg file with video (Theora); not accepted.")
        if not container.streams.audio:
            raise MediaRejected(f"The {FORMATS[key][1]} file has no audio stream.")
        return probe_container(container, path, key)


def probe_container(container, path: Path, key: str) -> Detected:
    stream = container.streams.audio[0]
    ctx = stream.codec_context
    if ctx is None:  # FFmpeg knows no decoder for it
        raise MediaRejected(f"The {FORMATS[key][1]} file's audio codec is unknown.")
    if not ctx.sample_rate or not ctx.channels:
        raise MediaRejected(f"The {FORMATS[key][1]} header is corrupt: no sample rate or channels.")
    _first_samples(container, stream)
    duration = _duration(container, stream)
    metadata = {
        "container": key,
        "duration": round(duration, 3),
        "codec": ctx.name,
        "sample_rate": ctx.sample_rate,
        "channels": ctx.channels,
        "bit_rate": container.bit_rate or None,
    }
    mime, name = FORMATS[key]
    label = f"{name} audio ({ctx.name}, {ctx.sample_rate} Hz, {ctx.channels} ch)"
    return Detected("audio", mime, label, metadata)


def _duration(container, stream) -> float:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    return container.duration / av.time_base if container.duration else 0.0


def _first_samples(container, stream) -> None:
    try:
        for count, packet in enumerate(container.demux(stream)):
            if packet.decode():
                return
            if count > MAX_PACKETS:
                break
    except av.FFmpegError as exc:
        raise MediaRejected(f"The audio does not decode: {exc}") from exc
    raise MediaRejected("No audio could be decoded: the file is damaged or empty.")


def probe_wav(path: Path, key: str) -> Detected:
    """FFmpeg forgives a lot in a WAV header; evidence should not. Read it ourselves first."""
    with open(path, "rb") as f:
        head = f.read(4096)
    _check_wav_header(head)
    return probe(path, key)


def _check_wav_header(head: bytes) -> None:
    position = 12
    while position + 8 <= len(head):
        chunk, size = (
            head[position : position + 4],
            struct.unpack("<I", head[position + 4 : position + 8])[0],
        )
        if chunk == b"fmt ":
            return _check_fmt(head[position + 8 : position + 8 + size], size)
        if chunk == b"data":
            break
        position += 8 + size + (size & 1)
    raise MediaRejected("The WAV header is corrupt: no format chunk before the audio data.")


def _check_fmt(body: bytes, size: int) -> None:
    if size < 16 or len(body) < 16:
        raise MediaRejected(f"The WAV header is corrupt: a {size}-byte format chunk.")
    _tag, channels, rate, byte_rate, align, bits = struct.unpack("<HHIIHH", body[:16])
    problems = []
    if not 1 <= channels <= 64:
        problems.append(f"{channels} channels")
    if not 1 <= rate <= 1_536_000:
        problems.append(f"a sample rate of {rate} Hz")
    if bits and align and align != channels * ((bits + 7) // 8) and _tag == 1:
        problems.append(f"a block size of {align} bytes for {channels}×{bits}-bit samples")
    if problems:
        raise MediaRejected("The WAV header is corrupt: " + ", ".join(problems) + ".")


def derive(asset_id, path: Path, mime: str) -> tuple[dict, dict]:
    peaks = _peaks(path)
    return {}, {"waveform": _draw(asset_id, peaks)}


def _peaks(path: Path) -> np.ndarray:
    """The loudest sample in every 10 ms, mono, from one decoding pass."""
    from analysis.media.video import open_container

    resampler = av.AudioResampler(format="flt", layout="mono", rate=WAVEFORM_RATE)
    window = WAVEFORM_RATE // 100
    peaks: list[np.ndarray] = []
    carry = np.zeros(0, dtype=np.float32)
    with open_container(path) as container:
        for frame in container.decode(audio=0):
            for out in resampler.resample(frame):
                samples = np.concatenate([carry, np.abs(out.to_ndarray()[0])])
                whole = len(samples) // window * window
                peaks.append(samples[:whole].reshape(-1, window).max(axis=1))
                carry = samples[whole:]
    if carry.size:
        peaks.append(np.array([carry.max()]))
    return np.concatenate(peaks) if peaks else np.zeros(1, dtype=np.float32)


def _draw(asset_id, peaks: np.ndarray) -> str:
    width, height = WAVEFORM_SIZE
    columns = np.array_split(peaks, min(width, len(peaks)))
    levels = [float(c.max()) if c.size else 0.0 for c in columns]
    scale = max(max(levels), 1e-6)
    picture = Image.new("RGB", (len(levels), height), "white")
    draw = ImageDraw.Draw(picture)
    middle = height / 2
    for x, level in enumerate(levels):
        half = max(1.0, level / scale * (middle - 2))
        draw.line([(x, middle - half), (x, middle + half)], fill=(36, 87, 166))
    picture = picture.resize((width, height)) if len(levels) != width else picture
    with storage.derived_writer(asset_id, "waveform.png") as tmp:
        picture.save(tmp, "PNG")
    return "waveform.png"
