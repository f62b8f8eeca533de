"""Downloads are named by what the file is, originals stay as they came, scripts never run."""

from __future__ import annotations

import pytest
from django.urls import reverse

from analysis.media import storage
from tests import media_samples as samples
from tests.media_api import checked, upload

pytestmark = pytest.mark.django_db
OPEN_ACTION = b" /OpenAction << /S /JavaScript /JS (app.alert(document.cookie)) >>"


@pytest.fixture
def bob(client, people):
    client.force_login(people.bob)
    return client


def file_url(asset, **query) -> str:
    url = reverse("media-file", args=[asset.case_id, asset.id])
    return url + ("?download=1" if query.get("download") else "")


def test_a_png_called_report_html_downloads_as_report_png(bob, people):
    data = samples.image("png") + b"<html><script>alert(1)</script></html>"  # a trailer
    asset = checked(upload(bob, people.case, data, "report.html"))
    assert asset.status == "ready" and asset.filename == "report.html"  # kept for display
    reply = bob.get(file_url(asset, download=True))
    assert reply["Content-Disposition"] == 'attachment; filename="report.png"'
    assert reply["Content-Type"] == "image/png"
    assert b"".join(reply.streaming_content) == data  # the original, byte for byte
    assert storage.original_path(asset.case_id, asset.id).read_bytes() == data


@pytest.mark.parametrize(
    ("name", "make", "served"),
    [
        ("setup.exe", lambda: samples.wav(), "setup.wav"),
        ("archive.zip", lambda: samples.image("jpeg"), "archive.jpg"),
        ("notes", lambda: b"plain words\n", "notes.txt"),
    ],
)
def test_the_served_extension_follows_the_detected_type(bob, people, name, make, served):
    asset = checked(upload(bob, people.case, make(), name))
    reply = bob.get(file_url(asset, download=True))
    assert reply["Content-Disposition"] == f'attachment; filename="{served}"'


def test_a_pdf_with_an_open_action_script_is_served_sandboxed(bob, people):
    asset = checked(upload(bob, people.case, samples.pdf(["Hi"], catalog=OPEN_ACTION), "a.pdf"))
    assert asset.status == "ready"
    for url in (file_url(asset), file_url(asset, download=True)):
        reply = bob.get(url)
        assert reply["Content-Security-Policy"] == "default-src 'none'; sandbox"
        assert reply["X-Content-Type-Options"] == "nosniff"
    page = bob.get(reverse("media-detail", args=[asset.case_id, asset.id])).content
    assert b"page-0001.jpg" in page  # shown inline as re-encoded page images


def test_derived_files_are_served_with_an_audit_event(bob, people):
    from analysis.models import AuditEvent

    asset = checked(upload(bob, people.case, samples.pdf(["Hi"]), "a.pdf"))
    before = AuditEvent.objects.filter(action=AuditEvent.Action.MEDIA_VIEWED).count()
    for name in ("pages.json", "page-0001.jpg"):
        url = reverse("media-derived", args=[asset.case_id, asset.id, name])
        assert bob.get(url).status_code == 200
    events = AuditEvent.objects.filter(action=AuditEvent.Action.MEDIA_VIEWED).order_by("-seq")
    assert events.count() == before + 2
    assert events[0].details == {"via": "derived", "name": "page-0001.jpg"}
    assert events[0].actor == people.bob
