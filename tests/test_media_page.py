"""The media panel on the case page, the item page per kind, and live status for watchers."""

from __future__ import annotations

import pytest
from django.urls import reverse

from analysis.models import Analysis, AuditEvent
from tests import media_samples as samples
from tests.media_api import make_asset

pytestmark = pytest.mark.django_db


def page(client, asset) -> str:
    response = client.get(reverse("media-detail", args=[asset.case_id, asset.id]))
    assert response.status_code == 200
    return response.content.decode()


def test_the_case_page_lists_items_and_offers_upload_to_reviewers(client, people):
    asset = make_asset(people.case, people.bob, samples.image("png"), "scene.png")
    client.force_login(people.bob)
    html = client.get(reverse("case-detail", args=[people.case.id])).content.decode()
    assert f'id="media-{asset.id}"' in html and "scene.png" in html
    assert 'id="upload-zone"' in html
    assert reverse("media-derived", args=[asset.case_id, asset.id, "thumb.jpg"]) in html


def test_viewers_see_items_but_no_upload_zone(client, people):
    make_asset(people.case, people.bob, samples.image("png"), "scene.png")
    client.force_login(people.carol)
    html = client.get(reverse("case-detail", args=[people.case.id])).content.decode()
    assert "scene.png" in html and 'id="upload-zone"' not in html


def test_htmx_gets_just_the_card(client, people):
    asset = make_asset(people.case, people.bob, samples.image("png"), "scene.png")
    client.force_login(people.carol)
    url = reverse("media-detail", args=[asset.case_id, asset.id])
    html = client.get(url, headers={"HX-Request": "true"}).content.decode()
    assert html.strip().startswith("<article") and "<html" not in html


def test_an_image_page_has_a_zoomable_viewer_and_the_hash(client, people):
    asset = make_asset(people.case, people.bob, samples.image("png"), "scene.png")
    client.force_login(people.carol)
    html = page(client, asset)
    assert (
        "data-zoom-image" in html and reverse("media-file", args=[asset.case_id, asset.id]) in html
    )
    assert asset.sha256 in html and "64" in html
    event = AuditEvent.objects.get(action=AuditEvent.Action.MEDIA_VIEWED)
    assert event.details == {"via": "page"} and event.actor == people.carol


def test_a_video_page_has_a_player_with_poster_and_strip(client, people, settings):
    settings.MEDIA_STRIP_FRAMES = 3
    asset = make_asset(people.case, people.bob, samples.video(with_audio=True), "cam.mp4")
    client.force_login(people.carol)
    html = page(client, asset)
    assert "<video" in html and "poster.jpg" in html
    assert html.count("data-seek-index") == 3
    assert 'id="strip-times"' in html


def test_an_audio_page_has_a_player_and_waveform(client, people):
    asset = make_asset(people.case, people.bob, samples.wav(), "call.wav")
    client.force_login(people.carol)
    html = page(client, asset)
    assert "<audio" in html and "waveform.png" in html


def test_a_pdf_page_shows_page_previews_and_their_text(client, people):
    asset = make_asset(people.case, people.bob, samples.pdf(["First page", "Second page"]), "a.pdf")
    client.force_login(people.carol)
    html = page(client, asset)
    assert "page-0001.jpg" in html and "page-0002.jpg" in html
    assert "Second page" in html


def test_a_text_page_shows_the_text_escaped(client, people):
    text = "Witness: he said <script>alert(1)</script>\n"
    asset = make_asset(people.case, people.bob, text.encode(), "statement.txt")
    client.force_login(people.carol)
    html = page(client, asset)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert" not in html


def test_the_analyses_that_used_the_item_are_listed(client, people):
    asset = make_asset(people.case, people.bob, samples.image("png"), "scene.png")
    analysis = Analysis.objects.create(case=people.case, created_by=people.bob, question="Who?")
    analysis.media.add(asset)
    client.force_login(people.carol)
    html = page(client, asset)
    assert f"#analysis-{analysis.id}" in html and "Who?" in html


def test_a_hash_mismatch_is_shown(client, people):
    asset = make_asset(people.case, people.bob, samples.image("png"), "scene.png")
    asset.record_hash_check(False)
    client.force_login(people.carol)
    assert "Integrity warning" in page(client, asset)
    html = client.get(reverse("case-detail", args=[people.case.id])).content.decode()
    assert "Hash mismatch" in html


def test_watchers_hear_when_an_item_is_ready(people, monkeypatch):
    sent = []
    monkeypatch.setattr(
        "analysis.streaming._send", lambda case_id, msg: sent.append((case_id, msg))
    )
    asset = make_asset(people.case, people.bob, samples.image("png"), "scene.png")
    assert sent[-1] == (
        people.case.id,
        {"type": "media.status", "asset": str(asset.id), "status": "ready", "reason": "",
         "hash_mismatch": False},
    )  # fmt: skip
