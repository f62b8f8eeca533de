"""A case with many items and answers costs the same queries as a small one, and its page
shows one page of each (the rest behind page links), so the HTML does not grow with it."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from analysis.models import Analysis, AnswerMark, Case, MediaAsset
from analysis.views.cases import ANSWERS_PER_PAGE
from analysis.views.media_pages import MEDIA_PER_PAGE

pytestmark = pytest.mark.django_db


def _case(user, n_media: int, n_answers: int) -> Case:
    case = Case.create_with_owner(user=user, title=f"{n_media}/{n_answers}")
    MediaAsset.objects.bulk_create(
        MediaAsset(
            case=case,
            uploaded_by=user,
            filename=f"item-{i:03d}.png",
            kind="image",
            mime="image/png",
            detected="PNG",
            size=10,
            sha256=uuid.uuid4().hex * 2,
            status="ready",
            derived={"thumbnail": "t.webp"},
        )  # fmt: skip
        for i in range(n_media)
    )
    answers = Analysis.objects.bulk_create(
        Analysis(case=case, created_by=user, question=f"Q{i}", status="succeeded", answer="A")
        for i in range(n_answers)
    )
    AnswerMark.objects.bulk_create(
        AnswerMark(analysis=a, state="reviewed", updated_by=user) for a in answers[::2]
    )
    return case


def _get(client, case, **query):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("case-detail", args=[case.id]), query)
    assert response.status_code == 200
    return response.content.decode(), len(queries)


def test_queries_do_not_grow_and_only_one_page_is_drawn(client, people):
    small, big = _case(people.alice, 3, 3), _case(people.alice, 120, 90)
    client.force_login(people.alice)
    _get(client, small)  # session and caches warm
    small_html, small_queries = _get(client, small)
    big_html, big_queries = _get(client, big)
    assert big_queries == small_queries
    assert big_html.count('class="media-item ') == MEDIA_PER_PAGE
    assert big_html.count('name="media" value=') == MEDIA_PER_PAGE  # the ask form's choices
    assert big_html.count('class="analysis ') == ANSWERS_PER_PAGE
    assert "page 1 of 5" in big_html and "?media=2#media-panel" in big_html
    last_html, last_queries = _get(client, big, media=5, answers=5)
    assert last_queries == small_queries
    assert last_html.count('class="media-item ') == 120 - 4 * MEDIA_PER_PAGE
    assert last_html.count('class="analysis ') == 90 - 4 * ANSWERS_PER_PAGE
