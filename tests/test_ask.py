"""Asking a question: who may, what is saved, what is refused."""

from __future__ import annotations

import pytest
from django.urls import reverse

from analysis.models import Analysis

pytestmark = pytest.mark.django_db


def ask(client, user, case, question, **headers):
    client.force_login(user)
    return client.post(reverse("analysis-ask", args=[case.id]), {"question": question}, **headers)


def test_a_reviewer_asks_and_the_job_is_queued_after_commit(
    client, people, django_capture_on_commit_callbacks, monkeypatch
):
    sent = []
    monkeypatch.setattr("analysis.tasks.run_analysis.delay", lambda aid: sent.append(aid))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = ask(client, people.bob, people.case, "What is in the video?")
    assert response.status_code == 302
    analysis = Analysis.objects.get()
    assert analysis.status == Analysis.Status.QUEUED
    assert analysis.created_by == people.bob
    assert sent == []  # not before the commit
    for callback in callbacks:
        callback()
    assert sent == [str(analysis.id)]


def test_htmx_gets_the_new_answer_card(client, people, monkeypatch):
    monkeypatch.setattr("analysis.tasks.run_analysis.delay", lambda aid: None)
    response = ask(client, people.alice, people.case, "Who signs?", HTTP_HX_REQUEST="true")
    analysis = Analysis.objects.get()
    assert response.status_code == 200
    assert f'id="analysis-{analysis.id}"' in response.content.decode()
    assert "<html" not in response.content.decode()


def test_a_question_too_long_is_refused_and_nothing_is_saved(client, people, settings):
    settings.QUESTION_MAX_CHARS = 50
    response = ask(client, people.bob, people.case, "x" * 51, HTTP_HX_REQUEST="true")
    assert response.status_code == 422
    assert "at most 50 characters" in response.content.decode()
    assert not Analysis.objects.exists()


def test_an_empty_question_is_refused(client, people):
    response = ask(client, people.bob, people.case, "   ")
    assert response.status_code == 422
    assert not Analysis.objects.exists()


def test_a_viewer_may_not_ask(client, people):
    assert ask(client, people.carol, people.case, "Why?").status_code == 403
    assert not Analysis.objects.exists()


def test_an_outsider_gets_404(client, people):
    assert ask(client, people.mallory, people.case, "Why?").status_code == 404
    assert not Analysis.objects.exists()


def test_the_case_page_shows_saved_answers_after_reload(client, people):
    Analysis.objects.create(
        case=people.case,
        created_by=people.bob,
        question="Colour?",
        status=Analysis.Status.SUCCEEDED,
        answer="Blue, mostly.",
    )
    client.force_login(people.carol)
    page = client.get(reverse("case-detail", args=[people.case.id])).content.decode()
    assert "Blue, mostly." in page and "Succeeded" in page
    assert 'id="ask-form"' not in page  # a viewer sees answers, not the form


def test_a_running_answer_shows_what_streamed_so_far(client, people):
    analysis = Analysis.objects.create(case=people.case, created_by=people.bob, question="Q?")
    analysis.start()
    analysis.chunks.create(seq=1, text="So far ")
    analysis.chunks.create(seq=2, text="so good")
    client.force_login(people.bob)
    page = client.get(reverse("case-detail", args=[people.case.id])).content.decode()
    assert "So far so good" in page
    assert 'data-seq="2"' in page


def test_closed_cases_refuse_questions(client, people):
    people.case.status = "closed"
    people.case.save()
    assert ask(client, people.alice, people.case, "Why?").status_code == 403
