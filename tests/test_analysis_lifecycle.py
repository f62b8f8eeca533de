"""An analysis moves queued → running → succeeded/failed, and never stays "running"."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from analysis import pipeline
from analysis.inference import engine as engine_module
from analysis.inference.engine import EngineError, Generation
from analysis.models import Analysis

pytestmark = pytest.mark.django_db


class FakeEngine:
    """Unit tests of the code around the engine only; real inference is tested elsewhere."""

    name = "fake"

    def __init__(self, tokens=("Hel", "lo", "!"), error: Exception | None = None):
        self.tokens, self.error, self.calls = tokens, error, 0

    def generate(self, messages, *, on_token, should_stop=None, max_tokens=None):
        self.calls += 1
        for token in self.tokens:
            on_token(token)
        if self.error:
            raise self.error
        return Generation("".join(self.tokens), "prompt", 5, len(self.tokens), "stop")


@pytest.fixture
def analysis(people):
    return Analysis.objects.create(case=people.case, created_by=people.bob, question="What?")


@pytest.fixture
def fake(monkeypatch):
    def install(**kwargs):
        engine = FakeEngine(**kwargs)
        monkeypatch.setattr(pipeline, "get_engine", lambda: engine)
        return engine

    return install


def test_it_saves_the_answer_and_the_token_log(analysis, fake):
    fake()
    pipeline.run_analysis(analysis.id)
    analysis.refresh_from_db()
    assert analysis.status == Analysis.Status.SUCCEEDED
    assert analysis.answer == "Hello!"
    assert analysis.streamed_text()[0] == "Hello!"
    assert (analysis.prompt_tokens, analysis.completion_tokens) == (5, 3)
    assert analysis.attempts == 1 and analysis.finished_at is not None


def test_it_fails_with_the_engine_reason_and_keeps_partial_text(analysis, fake):
    fake(error=EngineError("The question is too long for the model's context"))
    pipeline.run_analysis(analysis.id)
    analysis.refresh_from_db()
    assert analysis.status == Analysis.Status.FAILED
    assert "too long" in analysis.error
    assert analysis.answer == "Hello!"


def test_an_unexpected_crash_still_ends_failed(analysis, fake):
    fake(error=RuntimeError("CUDA out of memory"))
    pipeline.run_analysis(analysis.id)
    analysis.refresh_from_db()
    assert analysis.status == Analysis.Status.FAILED
    assert "RuntimeError: CUDA out of memory" in analysis.error


def test_a_missing_model_file_fails_the_job(analysis, settings, fresh_engine):
    settings.GEMMA_MODEL_PATH = "/nonexistent/model.gguf"
    pipeline.run_analysis(analysis.id)
    analysis.refresh_from_db()
    assert analysis.status == Analysis.Status.FAILED
    assert "Model file not found" in analysis.error


def test_a_finished_analysis_is_not_run_again(analysis, fake):
    engine = fake()
    pipeline.run_analysis(analysis.id)
    pipeline.run_analysis(analysis.id)  # a redelivered message
    assert engine.calls == 1


def test_a_message_for_a_job_another_worker_holds_is_dropped(analysis, fake):
    # A duplicate message (redelivered, or sent again by the sweep): the claim is the lock.
    analysis.start("inference@other", 4242)
    engine = fake()
    pipeline.run_analysis(analysis.id)
    analysis.refresh_from_db()
    assert engine.calls == 0
    assert analysis.status == Analysis.Status.RUNNING and analysis.attempts == 1
    assert analysis.worker == "inference@other"


def test_a_requeued_job_restarts_its_answer(analysis, fake):
    analysis.start("inference@gone", 1)
    analysis.chunks.create(seq=1, text="half an ans")
    assert analysis.requeue(spent=True)
    assert not analysis.chunks.exists()
    fake()
    pipeline.run_analysis(analysis.id)
    analysis.refresh_from_db()
    assert analysis.answer == "Hello!" and analysis.attempts == 2
    # Numbered from 1 again (the first token goes out on its own, then the rest).
    seqs = list(analysis.chunks.values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1)) and analysis.streamed_text()[0] == "Hello!"


def test_a_queued_job_out_of_attempts_is_failed_not_run(analysis, fake):
    engine = fake()
    Analysis.objects.filter(pk=analysis.pk).update(attempts=Analysis.MAX_ATTEMPTS)
    pipeline.run_analysis(analysis.id)
    analysis.refresh_from_db()
    assert engine.calls == 0
    assert analysis.status == Analysis.Status.FAILED
    assert "Failed after 3 attempts" in analysis.error


def test_a_broker_outage_keeps_the_question_queued_for_later(analysis, monkeypatch):
    from analysis import recovery, tasks

    def broker_down(*args, **kwargs):
        raise ConnectionRefusedError("Connection refused")

    monkeypatch.setattr(tasks.run_analysis, "delay", broker_down)
    pipeline.enqueue(analysis)
    analysis.refresh_from_db()
    assert analysis.status == Analysis.Status.QUEUED and analysis.dispatched_at is None

    sent = []
    monkeypatch.setattr(tasks.run_analysis, "delay", sent.append)
    assert recovery.sweep() == 0  # just asked: its own request may still be sending it
    Analysis.objects.filter(pk=analysis.pk).update(created_at=timezone.now() - timedelta(minutes=1))
    assert recovery.sweep() == 1  # the broker is back: the sweep sends it
    analysis.refresh_from_db()
    assert sent == [str(analysis.id)] and analysis.dispatched_at is not None
    assert recovery.sweep() == 0  # sent once, not on every sweep


def test_the_worker_keeps_one_engine_per_process(settings, fresh_engine):
    first = engine_module.get_engine()
    assert engine_module.get_engine() is first
