"""Steering questions from the page: cancel, retry, the queue's places, the jobs page."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from analysis import queue
from analysis.models import Analysis, AuditEvent, Case

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued_jobs(monkeypatch):
    sent: list[str] = []
    monkeypatch.setattr("analysis.tasks.run_analysis.delay", sent.append)
    return sent


def ask(people, question="Q?", **fields) -> Analysis:
    return Analysis.objects.create(
        case=people.case, created_by=people.bob, question=question, **fields
    )


def test_it_cancels_a_queued_question_at_once(client, people, queued_jobs):
    analysis = ask(people)
    client.force_login(people.bob)
    response = client.post(reverse("analysis-cancel", args=[people.case.id, analysis.id]))
    assert response.status_code == 302
    analysis.refresh_from_db()
    assert analysis.status == Analysis.Status.CANCELLED
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"analysis.cancel_requested", "analysis.cancelled"} <= actions


def test_it_asks_a_running_question_to_stop(client, people):
    analysis = ask(people, status=Analysis.Status.RUNNING)
    client.force_login(people.bob)
    response = client.post(
        reverse("analysis-cancel", args=[people.case.id, analysis.id]), HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200 and b"analysis-" in response.content
    analysis.refresh_from_db()
    # The worker finishes it (tests/test_cancel_live.py): here only the request is recorded.
    assert analysis.status == Analysis.Status.RUNNING and analysis.cancel_requested


def test_a_finished_question_is_not_cancelled(client, people):
    analysis = ask(people, status=Analysis.Status.SUCCEEDED, answer="Done.")
    client.force_login(people.bob)
    client.post(reverse("analysis-cancel", args=[people.case.id, analysis.id]))
    analysis.refresh_from_db()
    assert analysis.status == Analysis.Status.SUCCEEDED and not analysis.cancel_requested
    assert not AuditEvent.objects.filter(action="analysis.cancel_requested").exists()


def test_it_retries_a_failed_question_as_a_new_one(
    client, people, queued_jobs, django_capture_on_commit_callbacks
):
    failed = ask(people, status=Analysis.Status.FAILED, error="Out of memory",
                 sampler={"max_tokens": 9}, response_schema={"type": "object"})  # fmt: skip
    client.force_login(people.bob)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("analysis-retry", args=[people.case.id, failed.id]))
    assert response.status_code == 302
    retry = Analysis.objects.get(retry_of=failed)
    assert (retry.question, retry.status, retry.sampler) == ("Q?", "queued", {"max_tokens": 9})
    assert retry.response_schema == {"type": "object"}
    assert queued_jobs == [str(retry.id)]
    assert AuditEvent.objects.filter(action="analysis.retried").count() == 1


def test_only_a_failed_question_is_retried(client, people, queued_jobs):
    done = ask(people, status=Analysis.Status.SUCCEEDED)
    client.force_login(people.bob)
    response = client.post(reverse("analysis-retry", args=[people.case.id, done.id]))
    assert response.status_code == 409 and Analysis.objects.count() == 1 and not queued_jobs


def finished(people, tokens_per_s: float, tokens: int, first: float) -> Analysis:
    timings = {"tokens_per_s": tokens_per_s, "time_to_first_token_s": first}
    return ask(people, status=Analysis.Status.SUCCEEDED, completion_tokens=tokens,
               finished_at=timezone.now(), record={"timings": timings})  # fmt: skip


def test_the_queue_says_each_place_and_start_from_the_measured_speed(people, django_user_model):
    finished(people, tokens_per_s=10.0, tokens=50, first=1.0)  # a job takes 1 + 50/10 = 6 s
    other = Case.create_with_owner(user=people.mallory, title="Another case")
    now = timezone.now()
    running = ask(people, status=Analysis.Status.RUNNING, started_at=now - timedelta(seconds=2))
    Analysis.objects.create(case=other, created_by=people.mallory, question="first")
    mine = [ask(people), ask(people)]
    places = queue.places([running, *mine], now=now)
    assert set(places) == {str(a.pk) for a in mine}  # only queued ones have a place
    first, second = places[str(mine[0].pk)], places[str(mine[1].pk)]
    # The other case's question is ahead in the shared queue.
    assert (first.position, first.running, second.position) == (2, 1, 3)
    # 4 s left of the running job, 6 s for the other case's: starts in 10 s, then 16 s.
    assert first.starts_at == now + timedelta(seconds=10)
    assert second.starts_at == now + timedelta(seconds=16)


def test_without_a_measured_job_the_place_has_no_start_time(people):
    analysis = ask(people)
    place = queue.places([analysis])[str(analysis.pk)]
    assert place.position == 1 and place.starts_at is None


def test_the_case_queue_answers_for_the_cases_queued_questions(client, people):
    analysis = ask(people)
    client.force_login(people.carol)  # a viewer sees where the case's questions stand
    data = client.get(reverse("case-queue", args=[people.case.id])).json()
    assert data["places"][str(analysis.id)]["position"] == 1
    assert data["newest"] == [str(analysis.id)]


def test_the_case_queue_names_the_newest_questions_of_that_case_only(client, people):
    from analysis.views.steering import NEWEST

    asked = [
        ask(people, question=f"Q{i}?", status=Analysis.Status.SUCCEEDED) for i in range(NEWEST + 2)
    ]
    other = Case.create_with_owner(user=people.mallory, title="Not yours")
    Analysis.objects.create(case=other, created_by=people.mallory, question="Secret question")
    client.force_login(people.carol)
    data = client.get(reverse("case-queue", args=[people.case.id])).json()
    assert data["newest"] == [str(a.id) for a in reversed(asked)][:NEWEST]


def test_the_jobs_page_lists_live_questions_of_the_users_cases_only(client, people):
    mine = ask(people, question="Is the door open?")
    ask(people, question="Old one", status=Analysis.Status.SUCCEEDED)
    other = Case.create_with_owner(user=people.mallory, title="Not yours")
    Analysis.objects.create(case=other, created_by=people.mallory, question="Secret question")
    client.force_login(people.bob)
    page = client.get(reverse("jobs")).content.decode()
    assert "Is the door open?" in page and "#1" in page
    assert "Old one" not in page and "Secret question" not in page and "Not yours" not in page
    assert reverse("analysis-cancel", args=[people.case.id, mine.id]) in page
    client.force_login(people.carol)  # a viewer sees it, without a cancel button
    page = client.get(reverse("jobs")).content.decode()
    assert "Is the door open?" in page
    assert reverse("analysis-cancel", args=[people.case.id, mine.id]) not in page
