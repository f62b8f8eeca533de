"""What happens to an analysis job, step by step (called by the thin Celery task)."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable

from django.db import transaction
from django.db.models import Q

from analysis import audit, streaming
from analysis.inference import registry
from analysis.inference.engine import EngineError, get_engine
from analysis.inference.prompts import build_request
from analysis.models import Analysis, AuditEvent, LanguageModel

log = logging.getLogger(__name__)
# How often a running job asks the database whether it was cancelled: one cheap indexed
# query per interval, whatever the token rate. The engine asks between every two tokens.
CANCEL_CHECK_SECONDS = 0.2


def run_analysis(analysis_id) -> None:
    analysis = Analysis.objects.select_related("case").filter(pk=analysis_id).first()
    if analysis is None:
        log.warning("analysis %s vanished before it ran", analysis_id)
        return
    if not _claim(analysis):
        # Finished, cancelled or out of attempts: tell the watchers the final word anyway.
        streaming.publish_status(analysis)
        return
    streaming.publish_status(analysis)
    stream = streaming.TokenStream(analysis)
    try:
        if reason := _changed_media(analysis):
            raise EngineError(reason)
        request = build_request(analysis)
        # A reproduction runs on the model its original ran on, or not at all.
        spec = registry.spec_for_record(request.replay) if request.replay else None
        engine = get_engine(spec) if spec else get_engine()
        result = engine.generate(request, on_token=stream.push, should_stop=_cancel_watch(analysis))
        stream.flush()
        _keep_record(analysis, engine, result)
        if result.finish_reason == "cancelled":
            _cancelled(analysis)
        else:
            _succeed(analysis, result)
    except EngineError as exc:
        stream.flush()
        if (generation := getattr(exc, "generation", None)) is not None:
            _keep_record(analysis, engine, generation)  # e.g. an answer that broke its schema
        _fail(analysis, str(exc))
    except Exception as exc:
        # Anything unexpected still ends the job as failed with its reason, never "running".
        log.exception("analysis %s failed", analysis_id)
        stream.flush()
        _fail(analysis, f"Internal error: {type(exc).__name__}: {exc}")
    streaming.publish_status(analysis)


def _changed_media(analysis: Analysis) -> str | None:
    """Evidence is hashed again before the model reads it; a changed file is never analysed."""
    from analysis.media.integrity import verify_asset

    live = analysis.media.filter(deleted_at__isnull=True)  # deleted ones fail in build_request
    changed = [a.filename for a in live if not verify_asset(a, via="analysis")]
    if changed:
        return f"Not analysed: {', '.join(changed)} changed since upload (SHA-256 mismatch)."
    return None


def fail_stale_analyses() -> int:
    """Fail running jobs whose worker died without telling anyone (run by beat)."""
    count = 0
    for analysis in Analysis.stale():
        if _fail(analysis, "The worker stopped responding; the job was stopped."):
            streaming.publish_status(analysis)
            count += 1
    return count


def enqueue(analysis: Analysis) -> None:
    """Hand a committed analysis to the inference queue and tell the case's watchers.

    If the broker cannot take it, the analysis fails now with the reason rather than
    sitting in "queued" forever.
    """
    from analysis.tasks import run_analysis

    try:
        run_analysis.delay(str(analysis.id))
    except Exception as exc:  # kombu raises a zoo of connection errors
        log.exception("could not enqueue analysis %s", analysis.id)
        _fail(analysis, f"Could not queue the job (broker unavailable): {exc}")
    streaming.publish_status(analysis)


# Each state change and its audit event commit together (issue 4): no event for a change
# that rolled back, no change without its event.


def _claim(analysis: Analysis) -> bool:
    """Start the job and record what happened.

    start() itself fails a job that is out of attempts. With the row locked, the status
    read first tells whether that failure happened here (record it) or the job had already
    finished elsewhere (its own event exists).
    """
    with transaction.atomic():
        was_finished = Analysis.objects.select_for_update().get(pk=analysis.pk).is_finished
        started = analysis.start()
        if started:
            audit.record(
                AuditEvent.Action.ANALYSIS_STARTED,
                case=analysis.case_id,
                target=analysis,
                details={"attempt": analysis.attempts},
            )
        elif not was_finished and analysis.status == Analysis.Status.FAILED:
            _record_failure(analysis)
    return started


def _cancel_watch(analysis: Analysis) -> Callable[[], bool]:
    """True once the job was cancelled, or finished elsewhere (the sweep failed it)."""
    next_check = 0.0
    rows = Analysis.objects.filter(pk=analysis.pk)
    stop = Q(cancel_requested=True) | ~Q(status=Analysis.Status.RUNNING)

    def should_stop() -> bool:
        nonlocal next_check
        now = time.monotonic()
        if now < next_check:
            return False
        next_check = now + CANCEL_CHECK_SECONDS
        return rows.filter(stop).exists()

    return should_stop


def _keep_record(analysis: Analysis, engine, result) -> None:
    """Which model answered and the reproducibility record, saved whatever the outcome."""
    model_id = (result.record.get("model") or {}).get("id")
    analysis.language_model = LanguageModel.objects.filter(pk=model_id or 0).first()
    analysis.model_name = engine.name
    analysis.record = result.record
    analysis.save(update_fields=["model_name", "language_model", "record"])


def _cancelled(analysis: Analysis) -> None:
    with transaction.atomic():
        if analysis.cancel():
            audit.record(
                AuditEvent.Action.ANALYSIS_CANCELLED,
                case=analysis.case_id,
                target=analysis,
                details={"partial_chars": len(analysis.answer)},
            )


def _succeed(analysis: Analysis, result) -> None:
    with transaction.atomic():
        if analysis.succeed(
            result.text,
            prompt_tokens=result.prompt_tokens,
            completion_tokens=result.completion_tokens,
        ):
            audit.record(
                AuditEvent.Action.ANALYSIS_FINISHED,
                case=analysis.case_id,
                target=analysis,
                details={
                    "model": analysis.model_name,
                    "model_sha256": (result.record.get("model") or {}).get("gguf_sha256", ""),
                    "prompt_tokens": result.prompt_tokens,
                    "completion_tokens": result.completion_tokens,
                    # Proves later that the answer shown is the answer the model gave.
                    "answer_sha256": hashlib.sha256(result.text.encode()).hexdigest(),
                },
            )


def _fail(analysis: Analysis, reason: str) -> bool:
    with transaction.atomic():
        failed = analysis.fail(reason)
        if failed:
            _record_failure(analysis)
    return failed


def _record_failure(analysis: Analysis) -> None:
    audit.record(
        AuditEvent.Action.ANALYSIS_FAILED,
        case=analysis.case_id,
        target=analysis,
        details={"reason": analysis.error[:500]},
    )
