"""Reproduce: an answer runs again on its recorded model, media plan and sampler — same text."""

from __future__ import annotations

import pytest
from django.urls import reverse

from analysis import pipeline
from analysis.inference import registry
from analysis.models import Analysis, AuditEvent, LanguageModel
from tests import engine_media as em
from tests.conftest import TINY_MMPROJ, TINY_TEXT
from tests.media_api import make_asset

pytestmark = [pytest.mark.slow, pytest.mark.django_db]


@pytest.fixture
def original(people, tmp_path, fresh_engine, monkeypatch) -> Analysis:
    monkeypatch.setattr("analysis.tasks.run_analysis.delay", lambda analysis_id: None)
    registry.register(
        name="tiny-gemma4", gguf=str(TINY_TEXT), mmproj=str(TINY_MMPROJ), n_ctx=2048,
        n_threads=2, sampler={"max_tokens": 12},
    )  # fmt: skip
    clip = em.mp4(tmp_path / "clip.mp4", seconds=3.0, audio=True).read_bytes()
    media = [
        make_asset(people.case, people.alice, clip, "clip.mp4"),
        make_asset(people.case, people.alice, em.png_bytes(), "scene.png"),
    ]
    analysis = Analysis.objects.create(case=people.case, created_by=people.bob, question="Why?")
    analysis.media.set(media)
    pipeline.run_analysis(analysis.id)
    analysis.refresh_from_db()
    assert analysis.status == Analysis.Status.SUCCEEDED, analysis.error
    return analysis


def reproduce(client, user, analysis) -> Analysis:
    client.force_login(user)
    url = reverse("analysis-reproduce", args=[analysis.case_id, analysis.id])
    assert client.post(url).status_code == 302
    return Analysis.objects.exclude(pk=analysis.pk).latest("created_at")


def test_reproducing_gives_the_identical_answer_from_the_identical_prompt(
    client, people, original, settings
):
    # Settings drift after the original ran: the copy still follows the record.
    settings.GEMMA_MEDIA_LIMITS = {"max_frames": 1}
    LanguageModel.objects.update(sampler={"max_tokens": 3, "temperature": 0.9, "seed": 5})
    copy = reproduce(client, people.bob, original)
    assert copy.reproduced_from == original and copy.question == original.question
    assert set(copy.media.all()) == set(original.media.all())
    event = AuditEvent.objects.get(action=AuditEvent.Action.ANALYSIS_REPRODUCED)
    assert event.actor == people.bob and event.details["original"] == str(original.id)

    pipeline.run_analysis(copy.id)
    copy.refresh_from_db()
    assert copy.status == Analysis.Status.SUCCEEDED, copy.error
    assert copy.answer == original.answer and len(original.answer) > 0
    for key in ("prompt", "media", "sampler", "model", "template_sha256"):
        assert copy.record[key] == original.record[key], key
    assert copy.record["media"][0]["frames"] == [0.5, 1.5, 2.5]


def test_a_reproduction_refuses_to_run_on_another_model(client, people, original):
    copy = reproduce(client, people.alice, original)
    LanguageModel.objects.update(gguf_sha256="f" * 64)  # re-registered with other files
    pipeline.run_analysis(copy.id)
    copy.refresh_from_db()
    assert copy.status == Analysis.Status.FAILED
    assert "is no longer registered: it cannot be reproduced" in copy.error


def test_viewers_may_not_reproduce(client, people, original):
    client.force_login(people.carol)
    url = reverse("analysis-reproduce", args=[original.case_id, original.id])
    assert client.post(url).status_code == 403
    assert Analysis.objects.count() == 1


def test_the_case_page_offers_reproduce_on_answers_with_a_record(client, people, original):
    client.force_login(people.bob)
    page = client.get(reverse("case-detail", args=[people.case.id])).content.decode()
    assert reverse("analysis-reproduce", args=[people.case.id, original.id]) in page


def test_an_answer_from_the_unregistered_development_model_reproduces_too(
    client, people, fresh_engine, monkeypatch
):
    monkeypatch.setattr("analysis.tasks.run_analysis.delay", lambda analysis_id: None)
    first = Analysis.objects.create(case=people.case, created_by=people.bob, question="Hi?")
    pipeline.run_analysis(first.id)
    first.refresh_from_db()
    assert first.record["model"]["registered"] is False
    copy = reproduce(client, people.bob, first)
    pipeline.run_analysis(copy.id)
    copy.refresh_from_db()
    assert copy.status == Analysis.Status.SUCCEEDED, copy.error
    assert copy.answer == first.answer
