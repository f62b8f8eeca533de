"""PyAV, shared by the video and audio kinds: opening a container, its duration, instants.

PyAV is imported inside each function: these run in the media worker's sandbox and in the
inference worker, never in the web process.
"""

from __future__ import annotations

from pathlib import Path

from analysis.media.types import MediaRejected


def open_container(path: Path, what: str = "video"):
    """The file as a demuxer that may read this one local file and nothing else."""
    import av

    try:
        # No protocol but the file itself: a playlist or reference inside cannot reach out.
        return av.open(str(path), metadata_errors="ignore", options={"protocol_whitelist": "file"})
    except (av.FFmpegError, ValueError, OSError) as exc:
        raise MediaRejected(f"The {what} container could not be read: {why(exc)}") from exc


def why(exc: Exception) -> str:
    return getattr(exc, "strerror", None) or str(exc)


def duration_of(container, stream=None) -> float:
    """Seconds: the stream's own duration when it has one, else the container's."""
    import av

    streams = [stream] if stream is not None else []
    streams += [*container.streams.video, *container.streams.audio]
    for candidate in streams:
        if candidate.duration and candidate.time_base:
            return float(candidate.duration * candidate.time_base)
    return container.duration / av.time_base if container.duration else 0.0


def sample_times(duration: float, count: int) -> list[float]:
    """Evenly spread instants, each in the middle of its slice (strips and model frames)."""
    count = max(1, count)
    return [round(duration * (i + 0.5) / count, 3) for i in range(count)]
