"""Follow-up questions continue a thread: earlier turns in the prompt, the same media."""

from __future__ import annotations

import pytest
from django.urls import reverse

from analysis.inference.prompts import build_request
from analysis.models import Analysis
from analysis.views.cards import threads
from tests import media_samples as samples
from tests.media_api import make_asset

pytestmark = pytest.mark.django_db


@pytest.fixture
def first(people) -> Analysis:
    doc = make_asset(people.case, people.alice, samples.pdf(["Invoice 4411: 300 EUR."]), "inv.pdf")
    analysis = Analysis.objects.create(
        case=people.case, created_by=people.bob, question="What is the total?",
        status=Analysis.Status.SUCCEEDED, answer="300 EUR [page 1].", record={"v": 1},
    )  # fmt: skip
    analysis.media.set([doc])
    return analysis


def follow_up(client, people, previous, question) -> Analysis:
    client.force_login(people.bob)
    response = client.post(
        reverse("analysis-ask", args=[people.case.id]),
        {"question": question, "follows": previous.id},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200, response.content.decode()
    return Analysis.objects.get(question=question)


def test_a_follow_up_is_about_the_threads_media_and_carries_its_turns(
    client, people, first, monkeypatch
):
    monkeypatch.setattr("analysis.tasks.run_analysis.delay", lambda analysis_id: None)
    second = follow_up(client, people, first, "Who issued it?")
    assert second.follows == first
    assert list(second.media.all()) == list(first.media.all())  # the prefix cache key stays
    second.status, second.answer = Analysis.Status.SUCCEEDED, "ACME Ltd."
    second.save()
    third = follow_up(client, people, second, "When is it due?")
    request = build_request(third)
    assert [m.name for m in request.media] == ["inv.pdf"]
    question = request.question
    assert question.index("What is the total?") < question.index("300 EUR [page 1].")
    assert question.index("Who issued it?") < question.index("ACME Ltd.")
    assert question.endswith("Follow-up question: When is it due?")


def test_the_thread_shows_as_one_conversation(client, people, first, monkeypatch):
    monkeypatch.setattr("analysis.tasks.run_analysis.delay", lambda analysis_id: None)
    second = follow_up(client, people, first, "Who issued it?")
    other = Analysis.objects.create(case=people.case, created_by=people.bob, question="Other?")
    grouped = threads(list(people.case.analyses.all()))
    assert [[c["analysis"] for c in t["cards"]] for t in grouped] == [[other], [first, second]]
    page = client.get(reverse("case-detail", args=[people.case.id])).content.decode()
    thread = page[page.index(f'id="thread-{first.id}"') :]
    assert thread.index(f"analysis-{first.id}") < thread.index(f"analysis-{second.id}")


def test_every_turn_can_be_reproduced_with_its_thread(client, people, first, monkeypatch):
    monkeypatch.setattr("analysis.tasks.run_analysis.delay", lambda analysis_id: None)
    second = follow_up(client, people, first, "Who issued it?")
    Analysis.objects.filter(pk=second.pk).update(status="succeeded", record={"v": 1})
    page = client.get(reverse("case-detail", args=[people.case.id])).content.decode()
    for turn in (first, second):
        assert reverse("analysis-reproduce", args=[people.case.id, turn.id]) in page
    client.post(reverse("analysis-reproduce", args=[people.case.id, second.id]))
    copy = Analysis.objects.get(reproduced_from=second)
    assert copy.follows == first and "300 EUR" in build_request(copy).question


def test_a_follow_up_to_another_cases_question_is_refused(client, people, first):
    from analysis.models import Case

    elsewhere = Case.create_with_owner(user=people.bob, title="Elsewhere")
    client.force_login(people.bob)
    response = client.post(
        reverse("analysis-ask", args=[elsewhere.id]), {"question": "And?", "follows": first.id}
    )
    assert response.status_code == 422 and not Analysis.objects.filter(question="And?").exists()
