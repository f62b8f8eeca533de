"""Poster + thumbnail strip: our PyAV code vs the ffmpeg CLI doing the same, in the same run.

    .venv/bin/pip install -e '.[bench]'      # imageio-ffmpeg: the ffmpeg CLI, bench only
    .venv/bin/python bench/frames.py [--seconds 60] [--size 1280x720] [--frames 8] [--repeat 3]

Encodes one H.264 test clip (moving picture plus noise, x264 defaults: a keyframe every
250 frames, like much real footage), then extracts the poster and the strip frames:

* PyAV: `analysis.media.video.derive`, the code the media worker runs (FrameReader: decode on
  within a GOP, seek to the keyframe before an instant across GOPs; scale, save JPEG).
* ffmpeg: one process with one accurately seeked input per instant (`-ss t -i clip`), each
  mapped to one scaled JPEG: the same frames, the same sizes, the same work.

Rounds alternate the two; the median of each is compared. Goal: PyAV ÷ ffmpeg ≤ 1.0.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import av
import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def setup(media_root: Path, frames: int) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("GEMMA_VAR_DIR", str(media_root.parent / "var"))
    os.environ["MEDIA_ROOT"] = str(media_root)
    os.environ["MEDIA_STRIP_FRAMES"] = str(frames)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gemma_web.settings")
    import django

    django.setup()


def make_clip(path: Path, seconds: int, size: tuple[int, int], fps: int = 25) -> None:
    width, height = size
    rng = np.random.default_rng(0)
    x = np.linspace(0, 255, width, dtype=np.float32)
    with av.open(str(path), "w") as box:
        stream = box.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast"}
        for i in range(seconds * fps):
            shade = ((x + i * 4) % 256).astype(np.uint8)
            picture = np.repeat(np.tile(shade, (height, 1))[:, :, None], 3, axis=2)
            noise = rng.integers(0, 24, size=(height // 8, width // 8, 1), dtype=np.uint8)
            picture = picture + np.kron(noise, np.ones((8, 8, 3), dtype=np.uint8))
            box.mux(stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")))
        box.mux(stream.encode(None))


def run_pyav(clip: Path) -> float:
    from analysis.media import storage, video

    asset_id = uuid.uuid4()
    started = time.perf_counter()
    video.derive(asset_id, clip, "video/mp4")
    elapsed = time.perf_counter() - started
    storage.remove_derived(asset_id)
    return elapsed


def ffmpeg_command(ffmpeg: str, clip: Path, out: Path, plan: list[tuple[float, int, str]]):
    command = [ffmpeg, "-v", "error", "-y"]
    for at, _, _ in plan:
        command += ["-ss", f"{at:.3f}", "-i", str(clip)]
    for index, (_, side, name) in enumerate(plan):
        scale = f"scale='if(gt(iw,ih),min({side},iw),-2)':'if(gt(iw,ih),-2,min({side},ih))'"
        command += ["-map", f"{index}:v:0", "-frames:v", "1", "-vf", scale, "-q:v", "4"]
        command.append(str(out / name))
    return command


def run_ffmpeg(command: list[str], out: Path) -> float:
    out.mkdir(exist_ok=True)
    started = time.perf_counter()
    subprocess.run(command, check=True)
    elapsed = time.perf_counter() - started
    shutil.rmtree(out)
    return elapsed


def plan_for(clip: Path, frames: int) -> list[tuple[float, int, str]]:
    from analysis.media import video

    with av.open(str(clip)) as container:
        duration = video.duration_of(container, container.streams.video[0])
    poster = [(min(1.0, duration * 0.1), video.POSTER_SIDE, "poster.jpg")]
    strip = [
        (t, video.STRIP_SIDE, f"strip-{i:02d}.jpg")
        for i, t in enumerate(video.sample_times(duration, frames))
    ]
    # The worker's thumbnail is scaled from the poster it already has: no extra decode.
    return poster + strip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    import imageio_ffmpeg

    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    size = tuple(int(n) for n in args.size.split("x"))
    with tempfile.TemporaryDirectory(prefix="gemma-bench-frames-") as tmp:
        work = Path(tmp)
        setup(work / "media", args.frames)
        clip = work / "clip.mp4"
        make_clip(clip, args.seconds, size)
        command = ffmpeg_command(ffmpeg, clip, work / "ffmpeg-out", plan_for(clip, args.frames))
        run_pyav(clip), run_ffmpeg(command, work / "ffmpeg-out")  # warm the page cache
        ours, theirs = [], []
        for _ in range(args.repeat):
            ours.append(run_pyav(clip))
            theirs.append(run_ffmpeg(command, work / "ffmpeg-out"))
        report(args, clip, ours, theirs)


def report(args, clip: Path, ours: list[float], theirs: list[float]) -> None:
    mine, cli = statistics.median(ours), statistics.median(theirs)
    print(f"clip: {args.seconds} s {args.size} H.264, {clip.stat().st_size / 1e6:.1f} MB")
    print(f"frames: 1 poster + {args.frames} strip, median of {args.repeat} rounds")
    print(f"PyAV (analysis.media.video.derive): {mine * 1000:8.1f} ms")
    print(f"ffmpeg CLI (one process):           {cli * 1000:8.1f} ms")
    print(f"ratio PyAV / ffmpeg: {mine / cli:.2f} (goal <= 1.0)")


if __name__ == "__main__":
    main()
