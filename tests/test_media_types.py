"""Typing by content: every accepted format is recognised, whatever the file is called."""

from __future__ import annotations

import pytest

from analysis.media import registry
from analysis.media.types import Detected, MediaRejected
from tests import media_samples as samples


def identify(path) -> Detected:
    """The magic bytes, then the kind's probe (what the media task runs in its sandbox)."""
    sniffed = registry.sniff_file(path)
    return registry.get(sniffed.kind).probe(path, sniffed.key)


def sniff(head: bytes) -> str:
    return registry.sniff(head).key


ACCEPTED = samples.ACCEPTED


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_it_recognises(tmp_path, name):
    make, kind, mime = ACCEPTED[name]
    path = tmp_path / "upload.bin"  # the name says nothing: content decides
    path.write_bytes(make())
    detected = identify(path)
    assert (detected.kind, detected.mime) == (kind, mime)
    assert detected.label


def test_a_video_reports_its_codec_size_and_audio(tmp_path):
    path = tmp_path / "clip"
    path.write_bytes(samples.video(seconds=1, fps=10, size=(64, 48), with_audio=True))
    meta = identify(path).metadata
    assert (meta["codec"], meta["width"], meta["height"], meta["fps"]) == ("h264", 64, 48, 10.0)
    assert meta["has_audio"] is True
    assert meta["duration"] == pytest.approx(1.0, abs=0.15)


@pytest.mark.parametrize(
    ("head", "found"),
    [
        (b"\x7fELF\x02\x01\x01", "executable"),
        (b"MZ\x90\x00", "Windows executable"),
        (b"\x00\x00\x00\x18ftypheic", "HEIF"),
        (b"RIFF\x00\x00\x00\x00CDXA", "RIFF"),
        (b"\x1f\x8b\x08", "gzip"),
    ],
)
def test_formats_we_do_not_take_are_named(head, found):
    with pytest.raises(MediaRejected, match=found):
        sniff(head)


def test_text_with_a_nul_byte_is_binary(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_bytes(b"line one\nline\x00two\n")
    with pytest.raises(MediaRejected, match="NUL byte at offset 13"):
        identify(path)


def test_latin1_text_is_not_utf8(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_bytes("Aussage über den Vorfall".encode("latin-1"))
    with pytest.raises(MediaRejected, match="not UTF-8"):
        identify(path)


def test_svg_is_markup_not_text(tmp_path):
    path = tmp_path / "x.txt"
    path.write_bytes(b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>')
    with pytest.raises(MediaRejected, match="HTML/XML"):
        identify(path)


def test_bm_at_the_start_of_text_is_not_a_bitmap():
    assert sniff(b"BMW 320d, plate HH-AB 123, seen at 14:02") == "text"
