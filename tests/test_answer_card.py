"""What an answer card says: cut at the limit, Reproduce on the re-fetched card, the form's
note about what the model cannot take, the live line of a queued question."""

from __future__ import annotations

import pytest
from django.urls import reverse

from analysis.models import Analysis

pytestmark = pytest.mark.django_db


def card(client, people, analysis) -> str:
    url = reverse("analysis-detail", args=[people.case.id, analysis.id])
    return client.get(url, HTTP_HX_REQUEST="true").content.decode()


def test_an_answer_cut_at_the_token_limit_says_so(client, people):
    cut = Analysis.objects.create(
        case=people.case, created_by=people.bob, question="Q?", status="succeeded",
        answer="It began to", completion_tokens=48, record={"finish_reason": "length"},
    )  # fmt: skip
    whole = Analysis.objects.create(
        case=people.case, created_by=people.bob, question="Q?", status="succeeded",
        answer="Done.", completion_tokens=2, record={"finish_reason": "stop"},
    )  # fmt: skip
    client.force_login(people.carol)
    assert "cut at the token limit (48 tokens)" in card(client, people, cut)
    assert "cut at the token limit" not in card(client, people, whole)


def test_the_card_fetched_when_an_answer_finishes_live_offers_reproduce(client, people):
    done = Analysis.objects.create(case=people.case, created_by=people.bob, question="Q?",
                                   status="succeeded", answer="A.", record={"v": 1})  # fmt: skip
    client.force_login(people.bob)
    url = reverse("analysis-reproduce", args=[people.case.id, done.id])
    assert url in card(client, people, done)
    client.force_login(people.carol)  # a viewer may not ask, so no button
    assert url not in card(client, people, done)


def test_the_form_says_what_a_text_only_model_cannot_take_before_submitting(client, people):
    from tests import media_samples as samples
    from tests.media_api import make_asset

    make_asset(people.case, people.alice, samples.image("png"), "scene.png")
    client.force_login(people.bob)
    page = client.get(reverse("case-detail", args=[people.case.id])).content.decode()
    assert 'data-role="media-note"' in page and "reads text only" in page


def test_a_queued_card_shows_its_place(client, people):
    queued = Analysis.objects.create(case=people.case, created_by=people.bob, question="Q?")
    client.force_login(people.bob)
    assert "Queued: #1 in line" in card(client, people, queued)
