"""Audio: sniff, probe (PyAV, plus our own reading of a WAV header), waveform, model PCM.

PyAV, numpy and Pillow are imported inside the functions that decode: those run in the
media worker's sandbox and the inference worker, never in the web process.
"""

from __future__ import annotations

import math
import struct
from pathlib import Path

from analysis.media import storage
from analysis.media.avio import duration_of, open_container
from analysis.media.types import Detected, MediaDecodeError, MediaKind, MediaRejected, Sniffed

# key -> (MIME type, label, download extension); the container keys come from video.py,
# whose containers may turn out to carry audio only.
FORMATS = {
    "wav": ("audio/wav", "WAV", ".wav"), "mp3": ("audio/mpeg", "MP3", ".mp3"),
    "aac": ("audio/aac", "AAC", ".aac"), "flac": ("audio/flac", "FLAC", ".flac"),
    "ogg": ("audio/ogg", "Ogg", ".ogg"), "mp4": ("audio/mp4", "M4A", ".m4a"),
    "mov": ("audio/mp4", "M4A", ".m4a"), "webm": ("audio/webm", "WebM audio", ".weba"),
    "matroska": ("audio/x-matroska", "Matroska audio", ".mka"),
    "avi": ("audio/x-msvideo", "AVI audio", ".avi"),
}  # fmt: skip
MAX_PACKETS = 500
WAVEFORM_SIZE = (1200, 160)
WAVEFORM_RATE = 8000  # peaks need no more than this; resampling first keeps the work small


def sniff(head: bytes) -> Sniffed | None:
    key = _key(head)
    if key is None:
        return None
    mime, label, extension = FORMATS[key]
    return Sniffed("audio", key, mime, f"{label} audio", extension)


def _key(head: bytes) -> str | None:
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        return "wav"
    for magic, key in ((b"fLaC", "flac"), (b"OggS", "ogg"), (b"ID3", "mp3")):
        if head.startswith(magic):
            return key
    if len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        # MPEG audio frame sync; layer bits 00 mean an ADTS (AAC) stream instead of MP3.
        return "aac" if head[1] & 0x06 == 0 else "mp3"
    return None


def probe(path: Path, key: str) -> Detected:
    if key == "wav":
        _check_wav(path)
    with open_container(path, "audio") as container:
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
    duration = duration_of(container, stream)
    metadata = {
        "container": key,
        "duration": round(duration, 3),
        "codec": ctx.name,
        "sample_rate": ctx.sample_rate,
        "channels": ctx.channels,
        "bit_rate": container.bit_rate or None,
    }
    mime, name, _ = FORMATS[key]
    label = f"{name} audio ({ctx.name}, {ctx.sample_rate} Hz, {ctx.channels} ch)"
    return Detected("audio", mime, label, metadata)


def _first_samples(container, stream) -> None:
    import av

    try:
        for count, packet in enumerate(container.demux(stream)):
            if packet.decode():
                return
            if count > MAX_PACKETS:
                break
    except av.FFmpegError as exc:
        raise MediaRejected(f"The audio does not decode: {exc}") from exc
    raise MediaRejected("No audio could be decoded: the file is damaged or empty.")


def _check_wav(path: Path) -> None:
    """FFmpeg forgives a lot in a WAV header; evidence should not. Read it ourselves first."""
    with open(path, "rb") as f:
        _check_wav_header(f.read(4096))


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


def _peaks(path: Path):
    """The loudest sample in every 10 ms, mono, from one decoding pass."""
    import av
    import numpy as np

    resampler = av.AudioResampler(format="flt", layout="mono", rate=WAVEFORM_RATE)
    window = WAVEFORM_RATE // 100
    peaks: list = []
    carry = np.zeros(0, dtype=np.float32)
    with open_container(path, "audio") as container:
        for frame in container.decode(audio=0):
            for out in resampler.resample(frame):
                samples = np.concatenate([carry, np.abs(out.to_ndarray()[0])])
                whole = len(samples) // window * window
                peaks.append(samples[:whole].reshape(-1, window).max(axis=1))
                carry = samples[whole:]
    if carry.size:
        peaks.append(np.array([carry.max()]))
    return np.concatenate(peaks) if peaks else np.zeros(1, dtype=np.float32)


def _draw(asset_id, peaks) -> str:
    import numpy as np
    from PIL import Image, ImageDraw

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


# --- what the model receives ---------------------------------------------------------------


def audio_pcm(path: Path, rate: int, start: float = 0.0, end: float | None = None):
    """Mono float32 samples at `rate` Hz of [start, end) seconds of the first audio track."""
    import av

    try:
        with open_container(path, "audio") as container:
            if not container.streams.audio:
                raise MediaDecodeError(f"{path.name} has no audio track")
            return _decode_pcm(container, container.streams.audio[0], rate, start, end)
    except (av.FFmpegError, MediaRejected) as exc:
        raise MediaDecodeError(f"{path.name} could not be decoded as audio: {exc}") from exc


def audio_spans(path: Path, rate: int, spans: list[tuple[float, float]]) -> list:
    """PCM for each (start, end) span. Spans that cover most of their range (a clip's
    segments) are cut from one decode; sparse ones (a long recording sampled) each seek."""
    import numpy as np

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


def _decode_pcm(container, stream, rate: int, start: float, end: float | None):
    import av
    import numpy as np

    if start > 0:
        container.seek(int(start / stream.time_base), stream=stream, backward=True)
    resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
    parts: list = []
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


def spread(duration: float, count: int, limits) -> list[tuple[float, float]]:
    """`count` segments spread evenly over the file, each at most audio_segment_seconds."""
    step = duration / max(1, count)
    span = limits.audio_segment_seconds
    return [(i * step, min((i + 1) * step, i * step + span)) for i in range(count)]


def audio_segments(duration: float, n_max: int, limits) -> list[tuple[float, float]]:
    """Whole-file segments of at most audio_segment_seconds, at most n_max of them, spread
    evenly (a long recording is sampled, the budget may sample it further)."""
    if duration <= 0:
        return [(0.0, limits.audio_segment_seconds)]
    count = max(1, min(n_max, math.ceil(duration / limits.audio_segment_seconds)))
    return spread(duration, count, limits)


def segment_unit(item, caps, group: int, a: float, b: float):
    from analysis.inference.units import Unit, hms

    unit = Unit("audio", f"[{hms(a)}-{hms(b)} audio] ", group, {"audio_segments": [a, b]})
    unit.bitmap_id = f"{item.sha256}:audio:{a:.3f}-{b:.3f}@{caps.sample_rate}"
    return unit


def loader(item, caps):
    def load(units: list) -> None:
        todo = [u for u in units if u.kind == "audio"]
        spans = [tuple(u.ref["audio_segments"]) for u in todo]
        for unit, pcm in zip(todo, audio_spans(item.path, caps.sample_rate, spans), strict=True):
            unit.payload = pcm

    return load


def section(item, number: int, caps, limits, plan):
    import av

    from analysis.inference.units import EVEN, Section, hms, require

    require(caps.audio, "audio", item)
    try:
        with open_container(item.path, "audio") as container:
            duration = duration_of(container)
    except (av.FFmpegError, MediaRejected) as exc:
        raise MediaDecodeError(f"{item.path.name} could not be read: {exc}") from exc
    if plan is not None:
        segments = [tuple(s) for s in plan.get("audio_segments", [])]
    else:
        segments = audio_segments(duration, limits.max_audio_segments, limits)
    units = [segment_unit(item, caps, i, a, b) for i, (a, b) in enumerate(segments)]
    title = f'Audio {number} "{item.name}" ({hms(duration)}):'
    return Section(item, title, units, EVEN, loader(item, caps))


KIND = MediaKind(
    name="audio",
    label="Audio",
    sniff=sniff,
    probe=probe,
    derive=derive,
    template="analysis/media/kinds/audio.html",
    section=section,
    needs=frozenset({"audio"}),
    extensions={mime: extension for mime, _, extension in FORMATS.values()},
)
