"""What happens to an analysis job, step by step (called by the thin Celery task)."""

from __future__ import annotations

import logging

from analysis import streaming
from analysis.inference.engine import EngineError, get_engine
from analysis.inference.prompts import build_messages
from analysis.models import Analysis

log = logging.getLogger(__name__)


def run_analysis(analysis_id) -> None:
    analysis = Analysis.objects.select_related("case").filter(pk=analysis_id).first()
    if analysis is None:
        log.warning("analysis %s vanished before it ran", analysis_id)
        return
    if not analysis.start():
        # Finished, cancelled or out of attempts: tell the watchers the final word anyway.
        streaming.publish_status(analysis)
        return
    streaming.publish_status(analysis)
    stream = streaming.TokenStream(analysis)
    try:
        engine = get_engine()
        result = engine.generate(build_messages(analysis), on_token=stream.push)
        stream.flush()
        analysis.model_name = engine.name
        analysis.save(update_fields=["model_name"])
        analysis.succeed(
            result.text,
            prompt_tokens=result.prompt_tokens,
            completion_tokens=result.completion_tokens,
        )
    except EngineError as exc:
        stream.flush()
        analysis.fail(str(exc))
    except Exception as exc:
        # Anything unexpected still ends the job as failed with its reason, never "running".
        log.exception("analysis %s failed", analysis_id)
        stream.flush()
        analysis.fail(f"Internal error: {type(exc).__name__}: {exc}")
    streaming.publish_status(analysis)


def fail_stale_analyses() -> int:
    """Fail running jobs whose worker died without telling anyone (run by beat)."""
    count = 0
    for analysis in Analysis.stale():
        if analysis.fail("The worker stopped responding; the job was stopped."):
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
        analysis.fail(f"Could not queue the job (broker unavailable): {exc}")
    streaming.publish_status(analysis)
