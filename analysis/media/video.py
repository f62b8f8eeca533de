"""Video (and the audio-only cases of video containers): probe, poster and thumbnail strip.

Frames are taken by seeking to sampled timestamps and decoding forward from the keyframe
before each one, never by decoding the whole file: a two-hour video costs a few GOPs.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from django.conf import settings

from analysis.media import audio, images
from analysis.media.avio import duration_of, open_container, sample_times, why
from analysis.media.types import Detected, MediaDecodeError, MediaKind, MediaRejected, Sniffed

# Which video codecs each container may carry: MP4/MOV only H.264/H.265.
ALLOWED_CODECS = {"isobmff": {"h264", "hevc"}, "webm": {"vp8", "vp9", "av1"}}
CODEC_NAMES = {"h264": "H.264", "hevc": "H.265", "vp8": "VP8", "vp9": "VP9", "av1": "AV1"}
# name -> (MIME type, label, download extension)
CONTAINERS = {
    "mp4": ("video/mp4", "MP4", ".mp4"), "mov": ("video/quicktime", "QuickTime MOV", ".mov"),
    "webm": ("video/webm", "WebM", ".webm"),
    "matroska": ("video/x-matroska", "Matroska (MKV)", ".mkv"),
    "avi": ("video/x-msvideo", "AVI", ".avi"),
}  # fmt: skip
QUICKTIME_ATOMS = {b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"}
MAX_PACKETS = 500  # a probe that finds no frame in this many packets gives up
LOOKAHEAD_BYTES = 16 * 1024 * 1024  # compressed video read ahead to decide: decode on or seek
POSTER_SIDE = 1280
STRIP_SIDE = 320


def sniff(head: bytes) -> Sniffed | None:
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        key = "avi"
    elif head.startswith(b"\x1aE\xdf\xa3"):
        key = "matroska"
    elif head[4:8] == b"ftyp" or head[4:8] in QUICKTIME_ATOMS:
        key = "isobmff"
    else:
        return None
    mime, label, extension = CONTAINERS[container_name(head, key)]
    return Sniffed("video", key, mime, f"{label} video", extension)


def container_name(head: bytes, key: str) -> str:
    """Tell the look-alikes apart: MP4 vs MOV (brand), WebM vs MKV (EBML DocType)."""
    if key == "isobmff":
        return "mov" if head[8:12] == b"qt  " or head[4:8] != b"ftyp" else "mp4"
    if key == "matroska":
        return "webm" if b"webm" in head[:64] else "matroska"
    return key


def probe(path: Path, key: str) -> Detected:
    with open(path, "rb") as f:
        name = container_name(f.read(64), key)
    with open_container(path) as container:
        if not container.streams.video:
            if container.streams.audio:
                return audio.probe_container(container, path, name)
            raise MediaRejected(f"The {CONTAINERS[name][1]} file has no video or audio stream.")
        stream = container.streams.video[0]
        if stream.codec_context is None:  # FFmpeg knows no decoder for it (found by fuzzing)
            raise MediaRejected(f"The {CONTAINERS[name][1]} file's video codec is unknown.")
        codec = stream.codec_context.name
        allowed = ALLOWED_CODECS.get("isobmff" if name in ("mp4", "mov") else name)
        if allowed is not None and codec not in allowed:
            wanted = " or ".join(CODEC_NAMES[c] for c in sorted(allowed))
            raise MediaRejected(
                f"Detected {CONTAINERS[name][1]} with {codec} video; only {wanted} is accepted."
            )
        metadata = _metadata(container, stream, name)
        _first_frame(container, stream)
        _check_tail(container, stream)
    mime, label, _ = CONTAINERS[name]
    label = f"{label} video ({CODEC_NAMES.get(codec, codec)}, {stream.width}×{stream.height})"
    return Detected("video", mime, label, metadata)


def _metadata(container, stream, name: str) -> dict:
    rate = stream.average_rate or stream.guessed_rate
    sound = container.streams.audio[0] if container.streams.audio else None
    if sound is not None and sound.codec_context is None:
        sound = None  # a sound track no decoder reads: the video is kept without it
    return {
        "container": name,
        "duration": round(duration_of(container, stream), 3),
        "width": stream.width,
        "height": stream.height,
        "codec": stream.codec_context.name,
        "fps": round(float(rate), 3) if rate else None,
        "has_audio": sound is not None,
        "audio_codec": sound.codec_context.name if sound else None,
        "sample_rate": sound.codec_context.sample_rate if sound else None,
        "channels": sound.codec_context.channels if sound else None,
        "bit_rate": container.bit_rate or None,
    }


def _first_frame(container, stream):
    import av

    try:
        # Reading packets fails as decoding them can (a playlist's entry the demuxer may not
        # open is EPERM): both are the file's fault.
        for count, packet in enumerate(container.demux(stream)):
            if frames := packet.decode():
                return frames[0]
            if count > MAX_PACKETS:
                break
    except av.FFmpegError as exc:
        raise MediaRejected(f"The video's first frames do not decode: {why(exc)}") from exc
    raise MediaRejected("No video frame could be decoded: the file is damaged or empty.")


def _check_tail(container, stream) -> None:
    """A file cut short (an index that points past its end) has no last frames: refuse it."""
    end = duration_of(container, stream)
    if end <= 0:
        return  # a live-style stream without a duration: nothing to check the end against
    try:
        frame_at(container, stream, max(0.0, end - 0.5))
    except MediaRejected as exc:
        raise MediaRejected(f"The video is truncated: {exc}") from exc


def frame_at(container, stream, seconds: float):
    """The first frame at or after `seconds`: seek to the keyframe before, decode forward."""
    return FrameReader(container, stream).at(seconds)


class FrameReader:
    """Frames at a rising series of instants from one video stream, decoding as little as
    it can: an instant with no keyframe between it and the last frame returned is reached by
    decoding on (a short clip with long GOPs is decoded once, not once per instant); any
    other by seeking to the keyframe before it, as `ffmpeg -ss` does."""

    def __init__(self, container, stream) -> None:
        self.container, self.stream = container, stream
        self.start = float(stream.start_time * stream.time_base) if stream.start_time else 0.0
        self._packets = None  # the demuxer, just past the packet that gave `_last`
        self._pending: list = []  # frames decoded from that packet, not yet looked at
        self._ahead: deque = deque()  # packets read ahead, not yet decoded
        self._last = None
        self._target = None

    def at(self, seconds: float):
        target = int((self.start + seconds) / self.stream.time_base)
        frame = None
        if self._last is not None and self._target is not None and target >= self._target:
            frame = self._decode_on(target, seeked=False)
        if frame is None:
            self._seek(target, seconds)
            self._packets, self._pending, self._last = self.container.demux(self.stream), [], None
            self._ahead.clear()
            frame = self._decode_on(target, seeked=True)
        if frame is None:
            raise MediaRejected(f"no frame decodes near {seconds:.1f} s")
        self._target = target
        return frame

    def _seek(self, target: int, seconds: float) -> None:
        import av

        try:
            self.container.seek(target, stream=self.stream, backward=True)
        except av.FFmpegError as exc:
            raise MediaRejected(f"no frame decodes near {seconds:.1f} s ({why(exc)})") from exc

    def _decode_on(self, target: int, *, seeked: bool):
        """The first frame at or after `target`; the last frame when the stream ends first.
        None when decoding on is the wrong way: a keyframe at or before `target` comes first
        (a seek gets there sooner), or nothing decodes."""
        import av

        if self._last is not None and (self._last.pts is None or self._last.pts >= target):
            return self._last  # two instants within one frame's span
        try:
            if not seeked and not self._pending and not self._no_keyframe_before(target):
                return None
            for _ in range(MAX_PACKETS + 1):
                if self._pending:
                    frames, self._pending = self._pending, []
                else:
                    packet = self._ahead.popleft() if self._ahead else next(self._packets, None)
                    if packet is None:
                        break
                    frames = packet.decode()
                for index, frame in enumerate(frames):
                    self._last = frame
                    if frame.pts is None or frame.pts >= target:
                        self._pending = frames[index + 1 :]
                        return frame
        except av.FFmpegError as exc:
            where = float(target * self.stream.time_base) - self.start
            raise MediaRejected(f"no frame decodes near {where:.1f} s ({why(exc)})") from exc
        return self._last  # the target lies past the last frame: the last frame is the closest

    def _no_keyframe_before(self, target: int) -> bool:
        """Read packets (without decoding them) up to `target`: True when none is a keyframe,
        so decoding on is cheaper than a seek. Packets read are kept for decoding; a lookahead
        past LOOKAHEAD_BYTES gives up (a seek then costs less than holding them)."""
        size = 0
        while size <= LOOKAHEAD_BYTES:
            # next(), not a for loop over the demuxer: it must outlive this call.
            packet = next(self._packets, None)
            if packet is None:
                return True
            if packet.is_keyframe and _at_or_before(packet, target):
                return False
            self._ahead.append(packet)
            size += packet.size
            if packet.pts is not None and packet.pts >= target:
                return True
        return False


def _at_or_before(packet, target: int) -> bool:
    return packet.pts is not None and packet.pts <= target


def derive(asset_id, path: Path, mime: str) -> tuple[dict, dict]:
    """Poster, thumbnail and strip. Worker threads take the instants in time order from one
    queue, each thread with its own demuxer and decoder (FFmpeg decodes without the GIL):
    seeks that each decode a GOP run side by side, a thread that drew short GOPs takes the
    next instant instead of waiting, and a thread whose next instant lies in the GOP it is
    in decodes on instead of seeking back (FrameReader)."""
    count = settings.MEDIA_STRIP_FRAMES
    with open_container(path) as container:
        stream = container.streams.video[0]
        duration = duration_of(container, stream)
    times = sample_times(duration, count)
    jobs = [(min(1.0, duration * 0.1), "poster.jpg", POSTER_SIDE)]
    jobs += [(t, f"strip-{i:02d}.jpg", STRIP_SIDE) for i, t in enumerate(times)]
    workers = max(1, min(len(jobs), os.cpu_count() or 1))
    with _Readers(path) as readers, ThreadPoolExecutor(workers, "frames") as pool:
        list(pool.map(lambda job: readers.extract(asset_id, *job), sorted(jobs)))
    thumb = images.thumbnail_from(asset_id, "poster.jpg", STRIP_SIDE)
    derived = {"poster": "poster.jpg", "thumbnail": thumb, "strip": [j[1] for j in jobs[1:]]}
    return {"strip_times": [round(t, 3) for t in times]}, derived


class _Readers:
    """One open container and FrameReader per worker thread, made on its first instant.

    Decoders keep PyAV's default slice threads, never frame threads: after every seek those
    refill their pipeline, which cost more than they saved (9 seeks in a 720p clip: 426 ms
    with slice threads, 599 ms with frame threads). The instants run in parallel instead.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.local = threading.local()
        self.opened: list = []
        self.lock = threading.Lock()

    def extract(self, asset_id, at: float, name: str, side: int) -> None:
        reader = getattr(self.local, "reader", None)
        if reader is None:
            container = open_container(self.path)
            with self.lock:
                self.opened.append(container)
            reader = self.local.reader = FrameReader(container, container.streams.video[0])
        _save(asset_id, name, reader.at(at), side)

    def __enter__(self) -> _Readers:
        return self

    def __exit__(self, *exc) -> None:
        for container in self.opened:
            container.close()


def _scaled(frame, side: int):
    """The frame as an RGB picture no larger than `side`, scaled by FFmpeg (swscale)."""
    scale = min(1.0, side / max(frame.width, frame.height))
    width, height = (
        max(2, int(frame.width * scale)) // 2 * 2,
        max(2, int(frame.height * scale)) // 2 * 2,
    )
    return frame.reformat(width=width, height=height, format="rgb24").to_image()


def _save(asset_id, name: str, frame, side: int) -> str:
    return images.save_jpeg(asset_id, name, _scaled(frame, side), side)


# --- what the model receives ---------------------------------------------------------------


def video_frames(path: Path, timestamps: list[float], max_side: int) -> list:
    """One RGB frame per timestamp (ascending): the first frame at or after it, read by the
    same FrameReader as the strip (decode on within a GOP, seek across GOPs)."""
    import av

    try:
        with open_container(path) as container:
            reader = FrameReader(container, container.streams.video[0])
            return [_max_side_frame(reader.at(t), max_side) for t in timestamps]
    except (av.FFmpegError, MediaRejected) as exc:
        raise MediaDecodeError(f"{path.name}: {exc}") from exc


def _max_side_frame(frame, max_side: int):
    width, height = frame.width, frame.height
    scale = min(1.0, max_side / max(width, height))
    if scale < 1.0:
        # Let FFmpeg's scaler shrink it: faster than converting the full frame first.
        width, height = max(2, round(width * scale)), max(2, round(height * scale))
        return frame.to_ndarray(format="rgb24", width=width, height=height)
    return frame.to_ndarray(format="rgb24")


def info(path: Path) -> tuple[float, bool]:
    """(duration in seconds, has an audio track), for planning."""
    import av

    try:
        with open_container(path) as container:
            return duration_of(container), bool(container.streams.audio)
    except (av.FFmpegError, MediaRejected) as exc:
        raise MediaDecodeError(f"{path.name} could not be read: {exc}") from exc


def frame_count(duration: float, limits) -> int:
    """How many frames the model sees: one per frame_interval, at most max_frames."""
    return max(1, min(limits.max_frames, int(duration / limits.frame_interval)))


def section(item, number: int, caps, limits, plan):
    from analysis.inference.units import EVEN, Section, Unit, hms, require

    require(caps.vision, "video", item)
    duration, has_audio = info(item.path)
    if plan is not None:
        times = plan.get("frames", [])
        segments = [tuple(s) for s in plan.get("audio_segments", [])]
    else:
        times = sample_times(duration, frame_count(duration, limits))
        segments = audio.spread(duration, len(times), limits) if caps.audio and has_audio else []
    units = []
    for i, t in enumerate(times):
        frame = Unit("image", f"[{hms(t)}] ", i, {"frames": t})
        frame.bitmap_id = f"{item.sha256}:frame:{t:.3f}@{limits.frame_max_side}"
        units.append(frame)
        if i < len(segments):
            units.append(audio.segment_unit(item, caps, i, *segments[i]))
    sounds = audio.loader(item, caps)

    def load(todo: list) -> None:
        frames = [u for u in todo if u.kind == "image"]
        times = [u.ref["frames"] for u in frames]
        for unit, rgb in zip(
            frames, video_frames(item.path, times, limits.frame_max_side), strict=True
        ):
            unit.payload = rgb
        sounds(todo)

    title = f'Video {number} "{item.name}" ({hms(duration)}):'
    return Section(item, title, units, EVEN, load)


KIND = MediaKind(
    name="video",
    label="Video",
    sniff=sniff,
    probe=probe,
    derive=derive,
    template="analysis/media/kinds/video.html",
    section=section,
    needs=frozenset({"vision"}),
    extensions={mime: extension for mime, _, extension in CONTAINERS.values()},
)
