"""Bad input, one test each: a clear message, no MediaAsset row, no file left under MEDIA_ROOT."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from analysis.models import MediaAsset, MediaUpload
from analysis.tasks import clean_expired_uploads
from tests import media_samples as samples
from tests.media_api import (
    assert_nothing_stored,
    assert_rejected,
    checked,
    create,
    files_on_disk,
    patch,
    upload,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def bob(client, people, settings):
    settings.MEDIA_CHUNK_BYTES = 4096
    client.force_login(people.bob)
    return client


def refused(reply, status: int, *words: str) -> None:
    assert reply.status_code == status, reply.content
    message = reply.json()["error"]
    for word in words:
        assert word in message, message
    assert_nothing_stored()


def rejected(reply, *words: str) -> None:
    """Taken in by the upload (magic bytes only), then refused by the sandboxed probe."""
    assert_rejected(checked(reply), *words)


def test_an_empty_file_is_refused(bob, people):
    refused(create(bob, people.case, 0, "empty.mp4"), 422, "empty", "0 bytes")


def test_a_truncated_mp4_is_refused(bob, people):
    clip = samples.video(seconds=2)
    rejected(upload(bob, people.case, clip[: len(clip) // 2], "cut.mp4"), "video")


def test_a_truncated_mp4_with_its_index_in_front_is_refused(bob, people):
    clip = samples.video(seconds=3, faststart=True)
    rejected(upload(bob, people.case, clip[: len(clip) * 3 // 4], "cut.mp4"), "truncated")


def test_html_renamed_png_is_refused(bob, people):
    page = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"
    refused(upload(bob, people.case, page, "photo.png"), 422, "HTML")


def test_a_png_header_followed_by_html_is_refused(bob, people):
    data = samples.png_header(64, 48, 8, 2) + b"<html><script>alert(1)</script></html>"
    rejected(upload(bob, people.case, data, "photo.png"), "PNG", "not one")


def test_a_png_decompression_bomb_is_refused(bob, people):
    bomb = samples.png_bomb(20_000)  # 400 million pixels in about 50 KB
    assert len(bomb) < 100_000
    rejected(upload(bob, people.case, bomb, "bomb.png"), "PNG", "pixels")


def test_an_image_100000_pixels_wide_is_refused(bob, people):
    rejected(upload(bob, people.case, samples.wide_png(100_000, 1), "wide.png"), "100000×1")


def test_a_wav_with_a_corrupt_header_is_refused(bob, people):
    data = bytearray(samples.wav())
    data[22:24] = b"\x00\x00"  # channels = 0 in the fmt chunk
    rejected(upload(bob, people.case, bytes(data), "call.wav"), "WAV header is corrupt")


def test_a_wav_whose_format_chunk_is_missing_is_refused(bob, people):
    data = bytearray(samples.wav())
    data[12:16] = b"junk"
    rejected(upload(bob, people.case, bytes(data), "call.wav"), "WAV header is corrupt")


def test_an_unknown_binary_is_refused_naming_what_was_found(bob, people):
    refused(upload(bob, people.case, b"PK\x03\x04" + bytes(200), "report.pdf"), 422, "ZIP")


def test_a_pdf_header_on_garbage_is_refused(bob, people):
    rejected(upload(bob, people.case, b"%PDF-1.7\n" + bytes(300), "x.pdf"), "PDF")


def test_mpeg4_part_2_in_mp4_is_refused_naming_the_codec(bob, people):
    clip = samples.video("mp4", "mpeg4")
    rejected(upload(bob, people.case, clip, "old.mp4"), "mpeg4", "H.264")


def test_a_hostile_file_name_is_kept_for_display_only(bob, people):
    name = "../../etc/pass\x00wd\u202egnp.exe"
    reply = upload(bob, people.case, samples.image("png"), name)
    asset = MediaAsset.objects.get(pk=reply.json()["asset"])
    assert asset.filename == "passwdgnp.exe"
    for bad in ("/", "..", "\x00", "\u202e"):
        assert bad not in asset.filename
    assert files_on_disk() == [f"originals/{people.case.id}/{asset.id}"]


def test_an_upload_cut_off_and_never_resumed_is_cleaned_up(bob, people, settings):
    data = samples.wav(seconds=0.5)
    url = create(bob, people.case, len(data), "call.wav")["Location"]
    patch(bob, url, data[:4096], 0)
    assert files_on_disk() != []  # the partial file, waiting for the rest
    assert clean_expired_uploads() == 0  # not yet expired
    later = timezone.now() + timedelta(seconds=settings.MEDIA_UPLOAD_EXPIRY + 1)
    MediaUpload.objects.update(expires_at=later - timedelta(days=2))
    assert clean_expired_uploads() == 1
    assert not MediaUpload.objects.exists()
    assert_nothing_stored()
    assert bob.get(url).status_code == 404


def test_a_chunk_sent_twice_is_taken_once(bob, people):
    data = samples.wav(seconds=0.5)
    url = create(bob, people.case, len(data), "call.wav")["Location"]
    patch(bob, url, data[:4096], 0)
    again = patch(bob, url, data[:4096], 0)
    assert (again.status_code, again["Upload-Offset"]) == (204, "4096")
    for first in range(4096, len(data), 4096):
        assert patch(bob, url, data[first : first + 4096], first).status_code == 204
    assert bob.get(url).json()["status"] == "complete"
    assert MediaAsset.objects.get().size == len(data)


def test_a_chunk_out_of_order_is_refused_with_the_expected_offset(bob, people):
    data = samples.wav(seconds=0.5)
    url = create(bob, people.case, len(data), "call.wav")["Location"]
    reply = patch(bob, url, data[4096:8192], 4096)
    assert reply.status_code == 409
    assert reply.json()["offset"] == 0
    assert reply["Upload-Offset"] == "0"
    assert "from 0" in reply.json()["error"]
    assert not MediaAsset.objects.exists()


@pytest.mark.parametrize(
    "size, sent, words",
    [
        (9000, 5000, "at most 4096 bytes"),  # over the chunk limit
        (100, 200, "past the upload's length (100 bytes)"),
    ],
)
def test_a_chunk_too_large_is_refused_before_a_byte_counts(bob, people, size, sent, words):
    url = create(bob, people.case, size, "a.bin")["Location"]
    reply = patch(bob, url, b"x" * sent, 0)
    assert reply.status_code == 413
    assert words in reply.json()["error"]
    assert bob.head(url)["Upload-Offset"] == "0"


def test_a_file_over_the_limit_is_refused_before_any_byte(bob, people, settings):
    settings.MEDIA_MAX_FILE_BYTES = 1000
    refused(create(bob, people.case, 1001, "big.mp4"), 413, "limit")
    assert not MediaUpload.objects.exists()


def test_a_file_over_the_case_limit_is_refused(bob, people, settings):
    settings.MEDIA_MAX_CASE_BYTES = 10_000
    upload(bob, people.case, samples.image("png"), "a.png")  # a few hundred bytes
    used = MediaAsset.objects.get().size
    reply = create(bob, people.case, 10_000 - used + 1, "b.mp4")
    assert reply.status_code == 413
    assert "does not fit" in reply.json()["error"]
    assert MediaAsset.objects.count() == 1


def test_uploads_under_way_count_against_the_case_limit(bob, people, settings):
    settings.MEDIA_MAX_CASE_BYTES = 10_000
    assert create(bob, people.case, 6_000, "a.mp4").status_code == 201
    assert create(bob, people.case, 6_000, "b.mp4").status_code == 413


# Found by fuzzing (bench/fuzz.py): both were unhandled exceptions (500s) before.


def test_a_tiff_whose_second_page_has_no_width_is_refused(bob, people):
    from PIL import Image

    out = io.BytesIO()
    pages = [Image.new("RGB", (8, 8), colour) for colour in ("red", "green")]
    pages[0].save(out, "TIFF", save_all=True, append_images=pages[1:])
    data = bytearray(out.getvalue())
    widths = [m.start() for m in re.finditer(rb"\x00\x01[\x03\x04]\x00\x01\x00\x00\x00", data)]
    data[widths[1] : widths[1] + 2] = b"\xff\x7f"  # page 2's ImageWidth becomes a private tag
    rejected(upload(bob, people.case, bytes(data), "scan.tif"), "TIFF", "damaged")


def test_a_video_in_a_codec_ffmpeg_does_not_know_is_refused(bob, people):
    clip = samples.video("matroska", "libx264").replace(b"V_MPEG4/ISO/AVC", b"V_QQQQQ/ISO/AVC")
    rejected(upload(bob, people.case, clip, "clip.mkv"), "codec is unknown")
