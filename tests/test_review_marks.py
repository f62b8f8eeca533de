"""Reviewers pin and mark answers and add notes to answers and to time ranges of media;
every change is on the audit trail and shown on the case and media pages."""

from __future__ import annotations

import pytest
from django.urls import reverse

from analysis import search
from analysis.models import Analysis, AnswerMark, AuditEvent, ReviewNote
from tests import media_samples as samples
from tests.media_api import make_asset

pytestmark = pytest.mark.django_db
A = AuditEvent.Action


@pytest.fixture
def answer(people):
    analysis = Analysis.objects.create(case=people.case, created_by=people.bob, question="Who?")
    analysis.succeed("Someone.", prompt_tokens=1, completion_tokens=1)
    return analysis


def _mark(client, people, answer, **data):
    return client.post(reverse("analysis-mark", args=[people.case.id, answer.id]), data)


def test_it_pins_and_marks_an_answer_and_records_each_change(client, people, answer):
    client.force_login(people.bob)
    assert _mark(client, people, answer, pinned="1").status_code == 302
    assert _mark(client, people, answer, state="disputed").status_code == 302
    assert _mark(client, people, answer, state="reviewed").status_code == 302
    mark = AnswerMark.objects.get(analysis=answer)
    assert (mark.pinned, mark.state, mark.updated_by) == (True, "reviewed", people.bob)
    events = AuditEvent.objects.filter(case=people.case, action=A.ANSWER_MARKED).order_by("seq")
    assert [e.details["after"] for e in events] == [
        {"pinned": True, "state": ""},
        {"pinned": True, "state": "disputed"},
        {"pinned": True, "state": "reviewed"},
    ]
    page = client.get(reverse("case-detail", args=[people.case.id])).content.decode()
    assert "Pinned" in page and 'class="badge mark-reviewed"' in page


def test_htmx_gets_the_review_partial_back(client, people, answer):
    client.force_login(people.alice)
    url = reverse("analysis-mark", args=[people.case.id, answer.id])
    reply = client.post(url, {"state": "wrong"}, headers={"HX-Request": "true"})
    assert reply.status_code == 200
    html = reply.content.decode()
    assert html.strip().startswith('<div class="review"') and "mark-wrong" in html


def test_bad_marks_change_nothing(client, people, answer):
    client.force_login(people.bob)
    for data in ({}, {"state": "excellent"}, {"pinned": "yes"}):
        assert _mark(client, people, answer, **data).status_code == 302
    running = Analysis.objects.create(case=people.case, created_by=people.bob, question="Now?")
    _mark(client, people, running, state="reviewed")
    assert not AnswerMark.objects.exists()
    assert not AuditEvent.objects.filter(action=A.ANSWER_MARKED).exists()
    client.force_login(people.carol)  # a viewer
    assert _mark(client, people, answer, state="reviewed").status_code == 403
    client.force_login(people.mallory)
    assert _mark(client, people, answer, state="reviewed").status_code == 404


def test_notes_on_an_answer_and_on_a_video_time_range(client, people, answer):
    asset = make_asset(people.case, people.bob, samples.video("mp4", seconds=2), "door.webm")
    client.force_login(people.bob)
    client.post(reverse("analysis-note", args=[people.case.id, answer.id]), {"text": "Agreed."})
    url = reverse("media-note", args=[people.case.id, asset.id])
    client.post(url, {"text": "Door opens", "start": "0:00:01", "end": "1.5"})
    on_answer, on_video = ReviewNote.objects.order_by("created_at")
    assert on_answer.analysis == answer and on_answer.start_seconds is None
    assert (on_video.media, on_video.start_seconds, on_video.end_seconds) == (asset, 1.0, 1.5)
    assert on_video.time_range == "00:00:01–00:00:01"
    events = AuditEvent.objects.filter(case=people.case, action=A.NOTE_ADDED).order_by("seq")
    assert [e.details["on"] for e in events] == ["answer", "media"]
    media_page = client.get(reverse("media-detail", args=[people.case.id, asset.id])).content
    assert b"Door opens" in media_page and b'href="#t=1"' in media_page
    case_page = client.get(reverse("case-detail", args=[people.case.id])).content
    assert b"Agreed." in case_page
    assert [h.entry.kind for h in search.search(people.bob, "door opens")][:1] == ["note"]


def test_bad_notes_are_refused_with_a_reason(client, people, answer):
    asset = make_asset(people.case, people.bob, samples.video("mp4", seconds=2), "door.webm")
    client.force_login(people.bob)
    url = reverse("media-note", args=[people.case.id, asset.id])
    bad = [{"text": ""}, {"text": "x", "start": "soon"}, {"text": "x", "start": "5", "end": "2"}]
    for data in [*bad, {"text": "x", "end": "2"}]:
        reply = client.post(url, data, follow=True)
        assert b'class="error"' in reply.content, data
    assert not ReviewNote.objects.exists()
    assert not AuditEvent.objects.filter(action=A.NOTE_ADDED).exists()
