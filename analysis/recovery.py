"""Interrupted answers are handed to a worker again, from the heartbeat on their rows.

Redis keeps a message taken by a worker that was SIGKILLed in its unacked set until the
visibility timeout (longer than the longest answer, or it would redeliver running jobs):
in practice never. So the broker is not the source of recovery; the database is:

- `sweep()` (beat, every few seconds): a running job whose heartbeat is older than
  ANALYSIS_STALE_AFTER is queued again and dispatched while attempts remain, and failed with
  what to do after the last; a queued job whose message may have been lost is sent again.
- `recover_abandoned()` (a worker at start): jobs its previous process held are queued
  again at once, without waiting for the heartbeat to go stale.
- `give_back()` (a worker told to stop): its job is queued again, the attempt not spent.

A duplicate message is harmless: only a queued row can be claimed (Analysis.start), and the
claim on the row is the lock.
"""

from __future__ import annotations

import logging

from django.db import transaction

from analysis import audit, streaming
from analysis.models import Analysis, AuditEvent

log = logging.getLogger(__name__)

WORKER_SILENT = "its worker stopped sending heartbeats"
WORKER_RESTARTED = "its worker restarted"
WORKER_STOPPING = "its worker was told to stop"


def dispatch(analysis: Analysis) -> bool:
    """Send a message for a queued job; False (and it stays queued) if the broker is down."""
    from analysis.tasks import run_analysis

    try:
        run_analysis.delay(str(analysis.id))
    except Exception as exc:  # noqa: BLE001 - kombu raises a zoo of connection errors
        # No traceback: during an outage this would repeat for every job the sweep tries.
        log.warning("could not queue analysis %s (%s); the sweep sends it later", analysis.id, exc)
        return False
    analysis.dispatched()
    return True


def requeue(analysis: Analysis, *, reason: str, spent: bool, silent_since=None) -> bool:
    """Queue a running job again (and tell its watchers); False if it was not ours to take."""
    with transaction.atomic():
        if not analysis.requeue(spent=spent, silent_since=silent_since):
            return False
        audit.record(
            AuditEvent.Action.ANALYSIS_REQUEUED,
            case=analysis.case_id,
            target=analysis,
            details={"reason": reason, "attempts_spent": analysis.attempts},
        )
    log.warning("analysis %s queued again: %s", analysis.id, reason)
    streaming.publish_status(analysis)
    dispatch(analysis)
    return True


def sweep() -> int:
    """Take back jobs from silent workers; resend lost messages. Returns how many it moved."""
    from analysis.pipeline import fail

    moved = 0
    cutoff = Analysis.stale_cutoff()
    for analysis in Analysis.stale():
        if analysis.attempts < Analysis.MAX_ATTEMPTS:
            moved += requeue(analysis, reason=WORKER_SILENT, spent=True, silent_since=cutoff)
        elif fail(analysis, _out_of_attempts(analysis)):
            streaming.publish_status(analysis)
            moved += 1
    for analysis in Analysis.undispatched():
        moved += dispatch(analysis)
    return moved


def recover_abandoned(worker: str, pid: int) -> int:
    """Requeue what an earlier process of this worker held when it died."""
    if not worker:
        return 0
    rows = Analysis.objects.filter(status=Analysis.Status.RUNNING, worker=worker)
    return sum(
        requeue(analysis, reason=WORKER_RESTARTED, spent=True)
        for analysis in rows.exclude(worker_pid=pid)
    )


def give_back(analysis: Analysis) -> bool:
    """A clean stop: the job runs again from the start later, this attempt not counted."""
    return requeue(analysis, reason=WORKER_STOPPING, spent=False)


def _out_of_attempts(analysis: Analysis) -> str:
    from analysis.models.analyses import OUT_OF_ATTEMPTS

    return OUT_OF_ATTEMPTS.format(attempts=analysis.attempts)
