"""Analysis jobs on the real engine: the registered model, the case's media, cancel, reload."""

from __future__ import annotations

import shutil
import time

import pytest
from django.urls import reverse

from analysis import pipeline, streaming
from analysis.inference import engine as engine_module
from analysis.inference import registry
from analysis.models import Analysis, AuditEvent, LanguageModel
from tests import engine_media as em
from tests.conftest import TINY_MMPROJ, TINY_TEXT
from tests.media_api import make_asset, rewrite_original, stored_original

pytestmark = [pytest.mark.slow, pytest.mark.django_db]


@pytest.fixture
def tiny(fresh_engine) -> LanguageModel:
    return registry.register(
        name="tiny-gemma4", gguf=str(TINY_TEXT), mmproj=str(TINY_MMPROJ), n_ctx=2048,
        n_threads=2, sampler={"max_tokens": 8},
    )  # fmt: skip


@pytest.fixture
def clip(people, tmp_path):
    data = em.mp4(tmp_path / "clip.mp4", seconds=2.0, audio=True).read_bytes()
    return make_asset(people.case, people.alice, data, "clip.mp4")


def ask(people, *media, question="What happens?") -> Analysis:
    analysis = Analysis.objects.create(case=people.case, created_by=people.bob, question=question)
    analysis.media.set(media)
    pipeline.run_analysis(analysis.id)
    analysis.refresh_from_db()
    return analysis


@pytest.mark.usefixtures("media_store")
def test_an_analysis_about_media_runs_on_the_default_model_and_keeps_its_record(people, tiny, clip):
    analysis = ask(people, clip)
    assert analysis.status == Analysis.Status.SUCCEEDED, analysis.error
    assert analysis.language_model == tiny and analysis.model_name == "tiny-gemma4"
    assert analysis.answer == analysis.streamed_text()[0] and analysis.completion_tokens == 8
    record = analysis.record
    assert record["model"]["gguf_sha256"] == tiny.gguf_sha256
    assert record["model"]["mmproj_sha256"] == tiny.mmproj_sha256
    [used] = record["media"]
    assert (used["id"], used["sha256"], used["name"]) == (str(clip.id), clip.sha256, "clip.mp4")
    assert used["frames"] == [0.5, 1.5] and used["audio_segments"] == [[0.0, 1.0], [1.0, 2.0]]
    assert record["tokens"]["prompt"] == analysis.prompt_tokens
    finished = AuditEvent.objects.get(action=AuditEvent.Action.ANALYSIS_FINISHED)
    assert finished.details["model_sha256"] == tiny.gguf_sha256


def test_a_second_task_does_not_load_the_model_again(people, tiny):
    before = engine_module.loads
    assert ask(people).status == Analysis.Status.SUCCEEDED
    assert ask(people, question="And then?").status == Analysis.Status.SUCCEEDED
    assert engine_module.loads == before + 1


def test_a_new_default_model_is_loaded_by_the_next_task(people, tiny):
    ask(people)
    before = engine_module.loads
    text_only = registry.register(name="text", gguf=str(TINY_TEXT), n_ctx=512, default=True)
    analysis = ask(people)
    assert engine_module.loads == before + 1
    assert analysis.language_model == text_only


def test_a_model_file_changed_on_disk_fails_the_job_and_names_the_file(
    people, tmp_path, fresh_engine
):
    copy = tmp_path / "model.gguf"
    shutil.copyfile(TINY_TEXT, copy)
    registry.register(name="m", gguf=str(copy), n_ctx=512)
    with open(copy, "ab") as f:
        f.write(b"tampered")
    analysis = ask(people)
    assert analysis.status == Analysis.Status.FAILED
    assert f"Model file {copy} has changed since it was registered as 'm'" in analysis.error


def test_a_media_item_deleted_before_the_job_ran_fails_it_clearly(people, tiny, clip):
    clip.mark_deleted(people.alice)
    analysis = ask(people, clip)
    assert analysis.status == Analysis.Status.FAILED
    assert '"clip.mp4" is deleted' in analysis.error


@pytest.mark.django_db(transaction=True)  # the cancel watch reads on its own connection
def test_cancelling_a_running_job_stops_it_and_keeps_the_partial_answer(people, tiny, monkeypatch):
    monkeypatch.setattr(pipeline, "CANCEL_CHECK_SECONDS", 0.0)
    push = streaming.TokenStream.push
    pushed: list[str] = []

    def push_then_cancel(self, token: str) -> None:
        push(self, token)
        pushed.append(token)
        if len(pushed) == 1:
            self.analysis.request_cancel()  # as a reviewer's click would, from elsewhere
        time.sleep(0.05)  # a slow model: the watch thread gets its turn between tokens

    monkeypatch.setattr(streaming.TokenStream, "push", push_then_cancel)
    analysis = ask(people)
    assert analysis.status == Analysis.Status.CANCELLED
    assert analysis.answer == "".join(pushed)  # what streamed before the stop is kept
    assert analysis.record["finish_reason"] == "cancelled"
    # It stopped well before the end (8 tokens): the exact count is in test_engine.py.
    assert analysis.record["tokens"]["completion"] < 8
    assert AuditEvent.objects.filter(action=AuditEvent.Action.ANALYSIS_CANCELLED).count() == 1


def test_a_queued_job_cancelled_never_runs(people, tiny):
    analysis = Analysis.objects.create(case=people.case, created_by=people.bob, question="Q?")
    assert analysis.request_cancel() and analysis.status == Analysis.Status.CANCELLED
    pipeline.run_analysis(analysis.id)
    analysis.refresh_from_db()
    assert analysis.status == Analysis.Status.CANCELLED and analysis.attempts == 0


def test_asking_about_an_image_with_a_text_only_model_is_refused_before_queueing(
    client, people, fresh_engine, monkeypatch
):
    registry.register(name="text", gguf=str(TINY_TEXT))
    image = make_asset(people.case, people.alice, em.png_bytes(), "scene.png")
    queued = []
    monkeypatch.setattr("analysis.tasks.run_analysis.delay", queued.append)
    client.force_login(people.bob)
    url = reverse("analysis-ask", args=[people.case.id])
    response = client.post(url, {"question": "What is this?", "media": [image.id]})
    assert response.status_code == 422
    assert "cannot see images or video" in response.content.decode()
    assert not Analysis.objects.exists() and queued == []


def test_the_ask_form_offers_the_case_media_and_saves_the_choice(
    client, people, tiny, clip, monkeypatch
):
    monkeypatch.setattr("analysis.tasks.run_analysis.delay", lambda analysis_id: None)
    client.force_login(people.bob)
    page = client.get(reverse("case-detail", args=[people.case.id])).content.decode()
    assert 'name="media"' in page and "clip.mp4 (video)" in page
    url = reverse("analysis-ask", args=[people.case.id])
    assert client.post(url, {"question": "What?", "media": [clip.id]}).status_code == 302
    assert list(Analysis.objects.get().media.all()) == [clip]


@pytest.mark.usefixtures("media_store")
def test_media_changed_since_upload_is_never_analysed(people, tiny, clip):
    rewrite_original(clip, stored_original(clip) + b"tampered")  # on the disk, or in the store
    analysis = ask(people, clip)
    assert analysis.status == Analysis.Status.FAILED
    assert "clip.mp4 changed since upload (SHA-256 mismatch)" in analysis.error
    clip.refresh_from_db()
    assert clip.hash_mismatch
    assert AuditEvent.objects.filter(action=AuditEvent.Action.MEDIA_HASH_MISMATCH).count() == 1


@pytest.mark.usefixtures("media_store")
def test_media_is_hashed_again_before_each_analysis(people, tiny, clip):
    ask(people, clip)
    verified = AuditEvent.objects.filter(action=AuditEvent.Action.MEDIA_HASH_VERIFIED)
    assert verified.get().details["via"] == "analysis"
