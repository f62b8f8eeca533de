"""What the media task derives, per kind, and how it ends (ready, or failed with a reason)."""

from __future__ import annotations

import dataclasses
import io
import json

import pytest
from PIL import Image

from analysis.media import images, processing, registry, storage
from analysis.models import MediaAsset
from tests import media_samples as samples
from tests.media_api import make_asset, stored_derived

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_store")]


@pytest.fixture
def add(people):
    def add(data: bytes, name: str = "item") -> MediaAsset:
        return make_asset(people.case, people.bob, data, name)

    return add


def derived_image(asset: MediaAsset, name: str) -> Image.Image:
    with Image.open(io.BytesIO(stored_derived(asset, name))) as picture:
        picture.load()
        return picture


def test_an_image_gets_its_dimensions_and_a_thumbnail(add):
    asset = add(samples.image("png", size=(640, 480)))
    assert asset.status == MediaAsset.Status.READY
    assert (asset.metadata["width"], asset.metadata["height"]) == (640, 480)
    assert derived_image(asset, asset.derived["thumbnail"]).size == (320, 240)
    assert "preview" not in asset.derived  # browsers show PNG as it is


def test_a_tiff_gets_a_preview_browsers_can_show(add):
    asset = add(samples.image("tiff", size=(100, 80)))
    assert derived_image(asset, asset.derived["preview"]).format == "JPEG"


def test_a_gif_uses_its_first_frame(add):
    asset = add(samples.gif(frames=3))
    assert asset.metadata["frames"] == 3
    thumb = derived_image(asset, asset.derived["thumbnail"]).convert("RGB")
    red, _, blue = thumb.getpixel((16, 16))
    assert blue > 200 and red < 40  # frame 0 is blue; later frames turn red


@pytest.mark.parametrize("with_audio", [True, False])
def test_a_video_gets_duration_codec_fps_audio_poster_and_strip(add, settings, with_audio):
    settings.MEDIA_STRIP_FRAMES = 4
    clip = samples.video(seconds=2, fps=10, size=(96, 64), with_audio=with_audio)
    asset = add(clip, "clip.mp4")
    meta = asset.metadata
    assert asset.status == MediaAsset.Status.READY
    assert meta["duration"] == pytest.approx(2.0, abs=0.15)
    assert (meta["codec"], meta["fps"], meta["width"], meta["height"]) == ("h264", 10.0, 96, 64)
    assert meta["has_audio"] is with_audio
    assert derived_image(asset, asset.derived["poster"]).size == (96, 64)
    strip = [derived_image(asset, name) for name in asset.derived["strip"]]
    assert len(strip) == 4
    # Frames were taken across the clip (its colour moves from blue to red over time).
    reds = [picture.convert("RGB").getpixel((48, 32))[0] for picture in strip]
    assert reds == sorted(reds) and reds[-1] - reds[0] > 100
    assert meta["strip_times"] == [0.25, 0.75, 1.25, 1.75]


def test_a_webm_video_gets_a_poster(add):
    asset = add(samples.video("webm", "libvpx-vp9", with_audio=True), "clip.webm")
    assert asset.metadata["codec"] == "vp9" and asset.metadata["has_audio"] is True
    assert "poster" in asset.derived


def test_audio_gets_duration_rate_channels_and_a_waveform(add):
    asset = add(samples.wav(seconds=1.0, rate=16000, channels=2), "call.wav")
    meta = asset.metadata
    assert asset.status == MediaAsset.Status.READY
    assert meta["duration"] == pytest.approx(1.0, abs=0.01)
    assert (meta["sample_rate"], meta["channels"]) == (16000, 2)
    waveform = derived_image(asset, asset.derived["waveform"])
    assert waveform.size == (1200, 160)
    # A steady tone draws a band across the whole width, not a flat line.
    column = [waveform.convert("RGB").getpixel((600, y)) for y in range(160)]
    assert sum(1 for pixel in column if pixel != (255, 255, 255)) > 100


def test_an_mp3_gets_a_waveform(add):
    asset = add(samples.audio("mp3", "libmp3lame"), "call.mp3")
    assert asset.metadata["sample_rate"] == 48000
    assert "waveform" in asset.derived


def test_a_pdf_gets_page_count_text_and_page_previews(add):
    asset = add(samples.pdf(["Invoice 4411", "Signed by J. Doe", "Page three"]), "invoice.pdf")
    assert asset.status == MediaAsset.Status.READY
    assert asset.metadata["pages"] == 3
    texts = json.loads(stored_derived(asset, asset.derived["text"]))
    assert [t.strip() for t in texts] == ["Invoice 4411", "Signed by J. Doe", "Page three"]
    assert asset.derived["pages"] == ["page-0001.jpg", "page-0002.jpg", "page-0003.jpg"]
    page = derived_image(asset, "page-0001.jpg")
    assert page.width == 1000 and page.height > page.width  # a portrait page
    assert "thumbnail" in asset.derived


def test_only_the_first_pages_are_rendered(add, settings):
    settings.MEDIA_PDF_PREVIEW_PAGES = 2
    asset = add(samples.pdf(["a", "b", "c", "d"]), "long.pdf")
    assert len(asset.derived["pages"]) == 2
    assert len(json.loads(stored_derived(asset, "pages.json"))) == 4


def test_plain_text_is_ready_without_derived_files(add):
    asset = add(b"Statement of the witness.\nSecond line.\n", "statement.txt")
    assert asset.status == MediaAsset.Status.READY
    assert asset.metadata["lines"] == 3
    assert asset.derived == {}


def test_a_failure_ends_failed_with_its_reason_and_no_derived_files(people, monkeypatch):
    def broken(asset_id, path, mime):
        storage.derived_dir(asset_id).mkdir(parents=True)
        (storage.derived_dir(asset_id) / "thumb.jpg").write_bytes(b"half")
        raise OSError("decoder exploded")

    monkeypatch.setitem(registry._KINDS, "image", dataclasses.replace(images.KIND, derive=broken))
    sent = []
    monkeypatch.setattr("analysis.streaming._send", lambda case_id, msg: sent.append(msg))
    asset = make_asset(people.case, people.bob, samples.image("png"), "a.png")
    assert asset.status == MediaAsset.Status.FAILED
    assert "decoder exploded" in asset.status_reason
    assert not storage.derived_dir(asset.id).exists()
    assert storage.item_files(asset.case_id, asset.id) == [
        storage.original_key(asset.case_id, asset.id)
    ]
    assert sent[-1] == {
        "type": "media.status", "asset": str(asset.id), "status": "failed",
        "reason": asset.status_reason, "hash_mismatch": False,
    }  # fmt: skip


def test_a_redelivered_task_for_a_finished_item_does_nothing(people):
    asset = make_asset(people.case, people.bob, samples.image("png"), "a.png")
    before = asset.processed_at
    processing.process_asset(asset.id)
    asset.refresh_from_db()
    assert asset.processed_at == before
