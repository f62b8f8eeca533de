"""What a new user tripped over: raw media facts, ids on the audit page, a view counted
twice, bare error pages, the staff case list out of reach."""

from __future__ import annotations

import pytest
from django.test import override_settings
from django.urls import reverse

from analysis.models import AuditEvent
from analysis.views.media_pages import metadata_rows
from tests import media_samples as samples
from tests.media_api import make_asset

pytestmark = pytest.mark.django_db


def test_media_facts_have_labels_and_units():
    rows = dict(
        metadata_rows(
            {
                "has_audio": True,
                "duration": 5.0,
                "bit_rate": 108833,
                "sample_rate": 16000,
                "channels": 2,
                "width": 1920,
                "fps": 29.97,
                "strip_times": [0, 1],
            }  # fmt: skip
        )
    )
    assert rows == {
        "Sound track": "yes",
        "Duration": "5.0 s (0:00:05)",
        "Bit rate": "109 kbit/s",
        "Sample rate": "16 kHz",
        "Channels": "2 (stereo)",
        "Width": "1,920 px",
        "Frame rate": "30 frames/s",
    }


def test_the_audit_page_names_targets_and_counts_a_page_view_once(client, people):
    asset = make_asset(people.case, people.bob, samples.image("png"), "porch.png")
    client.force_login(people.alice)
    client.get(reverse("media-detail", args=[people.case.id, asset.id]))
    # The page's own <img> fetch (the browser says it is embedded) is not a second view.
    file_url = reverse("media-file", args=[people.case.id, asset.id])
    client.get(file_url, headers={"Sec-Fetch-Dest": "image"})
    views = AuditEvent.objects.filter(case=people.case, action=AuditEvent.Action.MEDIA_VIEWED)
    assert [e.details["via"] for e in views] == ["page"]
    opened = client.get(file_url)  # opened on its own: that is a view
    assert opened.status_code == 200, opened.status_code
    assert views.all().count() == 2
    page = client.get(reverse("case-audit", args=[people.case.id])).content.decode()
    assert "item “porch.png”" in page
    assert "<dt>filename</dt><dd>porch.png</dd>" in page  # details as facts, not JSON


@override_settings(DEBUG=False)
def test_error_pages_are_styled_with_a_way_back(client, people):
    client.force_login(people.carol)  # a viewer: 403 on edit
    forbidden = client.get(reverse("case-edit", args=[people.case.id]))
    assert forbidden.status_code == 403 and b"Back to my cases" in forbidden.content
    assert b"css/site.css" in forbidden.content
    client.force_login(people.mallory)
    missing = client.get(reverse("case-detail", args=[people.case.id]))
    assert missing.status_code == 404 and b"Back to my cases" in missing.content
    assert b"Transaction 4411" not in missing.content


def test_the_500_page_renders_without_a_request():
    from django.template.loader import render_to_string

    html = render_to_string("500.html")
    assert "Something went wrong" in html and 'href="/"' in html


def test_staff_see_the_staff_case_list_in_the_navigation(client, people):
    client.force_login(people.admin)
    page = client.get(reverse("case-list")).content.decode()
    assert f'href="{reverse("staff-case-list")}"' in page and f'href="{reverse("search")}"' in page
    client.force_login(people.bob)
    assert reverse("staff-case-list") not in client.get(reverse("case-list")).content.decode()
