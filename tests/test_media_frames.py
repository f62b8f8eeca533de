"""FrameReader: the frame at each instant, decoding on within a GOP and seeking across GOPs."""

from __future__ import annotations

import av
import pytest

from analysis.media import video
from tests import media_samples as samples


@pytest.fixture
def clip(tmp_path):
    def make(seconds: float, gop: int):
        path = tmp_path / f"clip-{gop}.mp4"
        path.write_bytes(samples.video(seconds=seconds, fps=10, gop=gop))  # x264: B-frames
        return path

    return make


class Counting:
    """The container as FrameReader sees it (seek, demux), with the seeks counted."""

    def __init__(self, container) -> None:
        self.container, self.seeks = container, []

    def seek(self, offset, **kwargs):
        self.seeks.append(offset)
        return self.container.seek(offset, **kwargs)

    def demux(self, *streams):
        return self.container.demux(*streams)


def seeking_reader(path):
    container = av.open(str(path))
    counting = Counting(container)
    return video.FrameReader(counting, container.streams.video[0]), counting.seeks, container


def fresh_pts(path, seconds: float) -> int:
    """The frame a lone seek finds (what `ffmpeg -ss` gives): the reference."""
    with av.open(str(path)) as container:
        return video.FrameReader(container, container.streams.video[0]).at(seconds).pts


@pytest.mark.parametrize("gop", [100, 20, 7])
def test_every_instant_gets_the_frame_a_lone_seek_gets(clip, gop):
    path = clip(6, gop)
    instants = [0.0, 0.05, 0.31, 0.35, 1.5, 2.41, 2.42, 4.0, 5.95, 9.0, 0.7, 3.3]  # then back
    reader, _, container = seeking_reader(path)
    with container:
        got = [reader.at(t).pts for t in instants]
    assert got == [fresh_pts(path, t) for t in instants]
    assert got[instants.index(9.0)] == max(got)  # past the end: the last frame


def test_a_clip_that_is_one_gop_is_decoded_once_not_once_per_instant(clip):
    reader, seeks, container = seeking_reader(clip(4, 100))
    with container:
        for t in (0.2, 1.0, 1.8, 2.6, 3.4):
            reader.at(t)
    assert len(seeks) == 1


def test_an_instant_past_a_keyframe_is_reached_by_seeking(clip):
    reader, seeks, container = seeking_reader(clip(6, 10))  # a keyframe every second
    with container:
        for t in (0.2, 0.5, 3.5, 3.6):
            reader.at(t)
    assert len(seeks) == 2  # 0.2 (start), 3.5 (two keyframes lie between); 0.5, 3.6 decode on


def test_going_back_seeks_again(clip):
    reader, seeks, container = seeking_reader(clip(4, 100))
    with container:
        late, early = reader.at(3.0), reader.at(0.5)
    assert early.pts < late.pts
    assert len(seeks) == 2
