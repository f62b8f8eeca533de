"""Typing by content: every accepted format is recognised, whatever the file is called."""

from __future__ import annotations

import pytest

from analysis.media.ingest import MediaRejected, identify, sniff
from tests import media_samples as samples

ACCEPTED = {
    "jpeg": (lambda: samples.image("jpeg"), "image", "image/jpeg"),
    "png": (lambda: samples.image("png"), "image", "image/png"),
    "webp": (lambda: samples.image("webp"), "image", "image/webp"),
    "tiff": (lambda: samples.image("tiff"), "image", "image/tiff"),
    "bmp": (lambda: samples.image("bmp"), "image", "image/bmp"),
    "gif": (samples.gif, "image", "image/gif"),
    "wav": (samples.wav, "audio", "audio/wav"),
    "mp3": (lambda: samples.audio("mp3", "libmp3lame"), "audio", "audio/mpeg"),
    "flac": (lambda: samples.audio("flac", "flac"), "audio", "audio/flac"),
    "m4a": (lambda: samples.audio("ipod", "aac"), "audio", "audio/mp4"),
    "aac": (lambda: samples.audio("adts", "aac"), "audio", "audio/aac"),
    "opus": (lambda: samples.audio("ogg", "libopus"), "audio", "audio/ogg"),
    "mp4-h264": (lambda: samples.video("mp4", "libx264"), "video", "video/mp4"),
    "mp4-h265": (lambda: samples.video("mp4", "libx265"), "video", "video/mp4"),
    "mov": (lambda: samples.video("mov", "libx264"), "video", "video/quicktime"),
    "webm": (lambda: samples.video("webm", "libvpx-vp9"), "video", "video/webm"),
    "mkv": (lambda: samples.video("matroska", "libx264"), "video", "video/x-matroska"),
    "avi": (lambda: samples.video("avi", "mpeg4"), "video", "video/x-msvideo"),
    "pdf": (lambda: samples.pdf(["One"]), "document", "application/pdf"),
    "text": (lambda: "Zeugenaussage — 12 Zeilen\n".encode(), "document", "text/plain"),
}


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
