"""An interrupted answer is queued again from the heartbeat on its row, and runs once at a time.

These drive the recovery code directly on the real database; tests/test_chaos.py kills real
processes.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from analysis import heartbeat, pipeline, recovery
from analysis.inference.engine import Generation
from analysis.models import Analysis, AuditEvent, WorkerHeartbeat

pytestmark = pytest.mark.django_db


@pytest.fixture
def analysis(people):
    return Analysis.objects.create(case=people.case, created_by=people.bob, question="What?")


@pytest.fixture
def sent(monkeypatch):
    messages: list[str] = []
    monkeypatch.setattr("analysis.tasks.run_analysis.delay", messages.append)
    return messages


def go_silent(analysis: Analysis, seconds: float) -> None:
    old = timezone.now() - timedelta(seconds=seconds)
    Analysis.objects.filter(pk=analysis.pk).update(heartbeat_at=old)


def test_the_sweep_requeues_a_job_whose_worker_went_silent(analysis, people, settings, sent):
    settings.ANALYSIS_STALE_AFTER = 10
    analysis.start("inference@a", 11)
    analysis.chunks.create(seq=1, text="half")
    fresh = Analysis.objects.create(case=people.case, created_by=people.bob, question="Fresh?")
    fresh.start("inference@b", 12)
    go_silent(analysis, 11)

    assert recovery.sweep() == 1
    analysis.refresh_from_db()
    fresh.refresh_from_db()
    assert analysis.status == Analysis.Status.QUEUED and analysis.attempts == 1
    assert analysis.status_label == "Retrying (attempt 2 of 3)"
    assert analysis.worker == "" and not analysis.chunks.exists()
    assert sent == [str(analysis.id)]
    assert fresh.status == Analysis.Status.RUNNING
    event = AuditEvent.objects.get(action=AuditEvent.Action.ANALYSIS_REQUEUED)
    assert event.details["reason"] == recovery.WORKER_SILENT


def test_the_last_attempt_fails_with_what_to_do(analysis, settings, sent):
    settings.ANALYSIS_STALE_AFTER = 10
    analysis.start("inference@a", 11)
    Analysis.objects.filter(pk=analysis.pk).update(attempts=Analysis.MAX_ATTEMPTS)
    go_silent(analysis, 11)

    recovery.sweep()
    analysis.refresh_from_db()
    assert analysis.status == Analysis.Status.FAILED
    assert "Failed after 3 attempts" in analysis.error and "log" in analysis.error
    assert sent == []


def test_a_worker_that_beat_meanwhile_keeps_its_job(analysis, settings, sent):
    settings.ANALYSIS_STALE_AFTER = 10
    analysis.start("inference@a", 11)
    go_silent(analysis, 11)
    stale = list(Analysis.stale())
    Analysis.objects.filter(pk=analysis.pk).update(heartbeat_at=timezone.now())  # a late beat
    cutoff = Analysis.stale_cutoff()
    assert not recovery.requeue(stale[0], reason="x", spent=True, silent_since=cutoff)
    analysis.refresh_from_db()
    assert analysis.status == Analysis.Status.RUNNING and analysis.worker == "inference@a"


def test_a_restarted_worker_takes_back_what_its_previous_process_held(analysis, people, sent):
    analysis.start("inference@host", 100)
    other = Analysis.objects.create(case=people.case, created_by=people.bob, question="B?")
    other.start("inference@elsewhere", 100)

    assert recovery.recover_abandoned("inference@host", 200) == 1
    analysis.refresh_from_db()
    other.refresh_from_db()
    assert analysis.status == Analysis.Status.QUEUED and analysis.attempts == 1
    assert other.status == Analysis.Status.RUNNING
    assert sent == [str(analysis.id)]


def test_a_worker_that_lost_its_claim_cannot_finish_the_job(analysis):
    holder = Analysis.objects.get(pk=analysis.pk)
    holder.start("inference@a", 11)
    analysis.refresh_from_db()
    analysis.requeue(spent=True, silent_since=timezone.now())  # the sweep took it back
    analysis.start("inference@b", 12)  # another worker runs it now

    assert not holder.succeed("old answer", prompt_tokens=1, completion_tokens=1)
    assert not holder.fail("old failure")
    analysis.refresh_from_db()
    assert analysis.status == Analysis.Status.RUNNING and analysis.worker == "inference@b"


class StoppingEngine:
    """Stands in for the engine around the shutdown path: stops when should_stop says so."""

    name = "fake"

    def generate(self, request, *, on_token, should_stop=None):
        on_token("Hal")
        assert should_stop()  # the shutdown flag is seen at once, no query needed
        return Generation("Hal", "prompt", 3, 1, "cancelled")


def test_a_worker_told_to_stop_gives_the_job_back_without_spending_an_attempt(
    analysis, monkeypatch, sent
):
    monkeypatch.setattr(pipeline, "get_engine", lambda: StoppingEngine())
    heartbeat.shutting_down.set()
    try:
        pipeline.run_analysis(analysis.id)
    finally:
        heartbeat.shutting_down.clear()
    analysis.refresh_from_db()
    assert analysis.status == Analysis.Status.QUEUED
    assert analysis.attempts == 0 and analysis.status_label == "Queued"
    assert sent == [str(analysis.id)]
    event = AuditEvent.objects.get(action=AuditEvent.Action.ANALYSIS_REQUEUED)
    assert event.details["reason"] == recovery.WORKER_STOPPING


@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_thread_beats_for_each_held_job_and_for_the_worker(people, settings):
    analysis = Analysis.objects.create(case=people.case, created_by=people.bob, question="Q?")
    beat = heartbeat.Beat("inference@test", ["inference"], interval=0.05)
    analysis.start(beat.name, beat.pid)
    go_silent(analysis, 60)
    beat.start()
    try:
        with beat.hold(analysis) as held:
            held.model_name, held.tokens = "tiny", 40
            beat.beat_once()
            row = WorkerHeartbeat.objects.get(name="inference@test")
            assert row.current_analysis_id == analysis.pk and row.model_name == "tiny"
            assert row.tokens_per_second and row.tokens_per_second > 0
        analysis.refresh_from_db()
        assert analysis.heartbeat_at > timezone.now() - timedelta(seconds=5)
        assert not row.is_down()
    finally:
        beat.stop()
    row.refresh_from_db()
    assert row.is_down() and row.stopped_at is not None
    assert row.queue_list == ["inference"]


def test_a_silent_worker_row_is_shown_down(settings):
    settings.WORKER_DOWN_AFTER = 10
    now = timezone.now()
    row = WorkerHeartbeat(name="w", host="h", pid=1, started_at=now, beat_at=now)
    assert not row.is_down(now)
    assert row.is_down(now + timedelta(seconds=11))
