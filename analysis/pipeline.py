"""What happens to an analysis job, step by step (called by the thin Celery task)."""

from __future__ import annotations

import hashlib
import logging
import threading

from django.db import connection, transaction
from django.db.models import Q

from analysis import audit, heartbeat, metrics, recovery, search, streaming
from analysis.inference import registry
from analysis.inference.prompts import build_request
from analysis.inference.types import EngineError
from analysis.media import storage
from analysis.models import Analysis, AuditEvent, LanguageModel

log = logging.getLogger(__name__)
# How often a running job asks the database whether it was cancelled: one cheap indexed
# query per interval, whatever the token rate, on a thread of its own. The engine reads the
# answer (a flag) between every two tokens.
CANCEL_CHECK_SECONDS = 0.2


def get_engine(spec=None):
    """This worker's engine. Imported on first use: the web process, which enqueues jobs
    through this module, never loads llama.cpp."""
    from analysis.inference import engine

    return engine.get_engine(spec) if spec else engine.get_engine()


def lease_engine(spec=None):
    """The engine, kept loaded while this job answers (other jobs may answer beside it)."""
    from analysis.inference import engine

    return engine.using(get_engine(spec) if spec else get_engine())


def run_analysis(analysis_id) -> None:
    analysis = Analysis.objects.select_related("case").filter(pk=analysis_id).first()
    if analysis is None:
        log.warning("analysis %s vanished before it ran", analysis_id)
        return
    if not _claim(analysis):
        # Finished, held by another worker, or out of attempts: tell the watchers anyway.
        streaming.publish_status(analysis)
        return
    streaming.publish_status(analysis)
    with heartbeat.holding(analysis) as held:
        _answer(analysis, held)
    streaming.publish_status(analysis)
    streaming.drain()  # the final word reaches the watchers before the next job starts


def _answer(analysis: Analysis, held: heartbeat.Held) -> None:
    stream = streaming.TokenStream(analysis)

    def on_token(token: str) -> None:
        held.tokens += 1
        stream.push(token)

    watch = StopWatch(analysis)
    try:
        paths, reason = _local_media(analysis)
        if reason:
            raise EngineError(reason)
        request = build_request(analysis, paths=paths)
        # A reproduction runs on the model its original ran on, or not at all.
        spec = registry.spec_for_record(request.replay) if request.replay else None
        with lease_engine(spec) as engine:
            held.model_name = engine.name
            result = engine.generate(request, on_token=on_token, should_stop=watch.stopped)
        watch.close()
        stream.flush()
        if result.finish_reason == "cancelled" and _stopping(analysis):
            recovery.give_back(analysis)  # the worker is stopping: run it again after
            return
        _keep_record(analysis, engine, result)
        if result.finish_reason == "cancelled":
            _cancelled(analysis)
        else:
            _succeed(analysis, result)
    except EngineError as exc:
        stream.flush()
        if (generation := getattr(exc, "generation", None)) is not None:
            _keep_record(analysis, engine, generation)  # e.g. an answer that broke its schema
        fail(analysis, str(exc))
    except Exception as exc:
        # Anything unexpected still ends the job as failed with its reason, never "running".
        log.exception("analysis %s failed", analysis.id)
        stream.flush()
        fail(analysis, f"Internal error: {type(exc).__name__}: {exc}")
    finally:
        watch.close()
        storage.release_local()


def _stopping(analysis: Analysis) -> bool:
    """Stopped because the worker shuts down, not because a reviewer cancelled."""
    if not heartbeat.shutting_down.is_set():
        return False
    return not Analysis.objects.filter(pk=analysis.pk, cancel_requested=True).exists()


def _local_media(analysis: Analysis) -> tuple[dict, str | None]:
    """Evidence is hashed again before the model reads it; a changed file is never analysed.

    On the object store this is where the worker fetches each item (into its cache) and
    verifies it: the paths returned are the copies the engine then reads.
    """
    from analysis.media.integrity import local_copy

    live = analysis.media.filter(deleted_at__isnull=True)  # deleted ones fail in build_request
    paths, changed = {}, []
    for asset in live:
        if (path := local_copy(asset, via="analysis")) is None:
            changed.append(asset.filename)
        else:
            paths[asset.pk] = path
    if changed:
        reason = f"Not analysed: {', '.join(changed)} changed since upload (SHA-256 mismatch)."
        return paths, reason
    return paths, None


def enqueue(analysis: Analysis) -> None:
    """Hand a committed analysis to the inference queue and tell the case's watchers.

    If the broker cannot take it now, the analysis stays queued: the sweep sends it once
    the broker is back, so a question asked during an outage runs later, never gets lost.
    """
    recovery.dispatch(analysis)
    streaming.publish_status(analysis)


# Each state change and its audit event commit together: no event for a change
# that rolled back, no change without its event.


def _claim(analysis: Analysis) -> bool:
    """Start the job and record what happened.

    start() itself fails a job that is out of attempts. With the row locked, the status
    read first tells whether that failure happened here (record it) or the job had already
    finished elsewhere (its own event exists).
    """
    with transaction.atomic():
        was_finished = Analysis.objects.select_for_update().get(pk=analysis.pk).is_finished
        started = analysis.start(*heartbeat.identity())
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


class StopWatch:
    """Asks the database, on its own thread, whether the job must stop: cancelled, or this
    process lost the claim (the sweep took it back from a worker it believed dead). The
    decode thread only reads a flag between tokens (and whether the worker is stopping)."""

    def __init__(self, analysis: Analysis, every: float | None = None) -> None:
        self.every = CANCEL_CHECK_SECONDS if every is None else every
        held = Q(status=Analysis.Status.RUNNING, worker=analysis.worker,
                 worker_pid=analysis.worker_pid)  # fmt: skip
        self._rows = Analysis.objects.filter(pk=analysis.pk).filter(
            Q(cancel_requested=True) | ~held
        )
        self._stop, self._done = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._watch, name="stop-watch", daemon=True)
        self._thread.start()

    def stopped(self) -> bool:
        return self._stop.is_set() or heartbeat.shutting_down.is_set()

    def _watch(self) -> None:
        try:
            while not self._done.wait(max(self.every, 0.005)):
                if self._rows.exists():
                    self._stop.set()
                    return
        except Exception:  # noqa: BLE001 - a lost check must not end the job
            log.warning("cancel check failed", exc_info=True)
        finally:
            connection.close()  # this thread's own connection

    def close(self) -> None:
        self._done.set()
        self._thread.join(timeout=2)


def _keep_record(analysis: Analysis, engine, result) -> None:
    """Which model answered and the reproducibility record, saved whatever the outcome."""
    model_id = (result.record.get("model") or {}).get("id")
    analysis.language_model = LanguageModel.objects.filter(pk=model_id or 0).first()
    analysis.model_name = engine.name
    analysis.record = result.record
    analysis.save(update_fields=["model_name", "language_model", "record"])
    metrics.observe_answer(result.record)


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
            search.index_analysis(analysis)


def fail(analysis: Analysis, reason: str) -> bool:
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
