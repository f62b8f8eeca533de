from __future__ import annotations

import logging
import os
import time

from celery import Celery
from celery.signals import (
    after_setup_logger,
    before_task_publish,
    task_prerun,
    worker_ready,
    worker_shutdown,
    worker_shutting_down,
)

from gemma_web.broker_log import OutageFilter

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gemma_web.settings")

app = Celery("gemma_web")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@after_setup_logger.connect
def _quiet_outages(logger: logging.Logger, **_kwargs) -> None:
    """A broker outage logs one line when it starts and one when it ends, not one a retry."""
    for handler in logger.handlers:
        handler.addFilter(OutageFilter())


# Celery's messages carry no time they were sent: stamp one, so the worker that takes the job
# can tell how long it waited in its queue (gemma_queue_wait_seconds).
SENT_AT = "gemma_sent_at"


@before_task_publish.connect
def _stamp_sent_time(headers: dict | None = None, **_kwargs) -> None:
    if headers is not None:
        headers.setdefault(SENT_AT, time.time())


@task_prerun.connect
def _measure_queue_wait(task=None, **_kwargs) -> None:
    sent_at = getattr(task.request, SENT_AT, None) if task is not None else None
    queue = (task.request.delivery_info or {}).get("routing_key") if sent_at else None
    if queue:
        from analysis import metrics

        metrics.observe_queue_wait(queue, time.time() - float(sent_at))


@worker_ready.connect
def _start_heartbeat(sender, **_kwargs) -> None:
    """Beat for this worker and its jobs; take back what its previous process held."""
    from analysis import heartbeat, recovery

    if heartbeat.current() is not None:
        return
    queues = sorted(sender.app.amqp.queues.consume_from)
    beat = heartbeat.start(sender.hostname, queues)
    recovery.recover_abandoned(beat.name, beat.pid)
    _preload_model(beat)


def _preload_model(beat) -> None:
    """Inference workers load the model at start, so the first question does not wait for it.

    Only workers started with GEMMA_PRELOAD_MODEL=1 (the inference queue) do this; a failure is
    logged and each task then fails with the reason instead of the worker refusing to start.
    """
    from gemma_web.gc_tuning import settle

    if os.environ.get("GEMMA_PRELOAD_MODEL") != "1":
        settle()
        return
    from analysis.inference.engine import EngineError, get_engine

    try:
        beat.model_name = get_engine().name
    except EngineError:
        logging.getLogger(__name__).exception("could not preload the model")
    settle()  # the model's objects too: a worker keeps them for its lifetime


@worker_shutting_down.connect
def _stop_generating(**_kwargs) -> None:
    """SIGTERM/Ctrl-C: the running answer stops at its next token and is queued again."""
    from analysis import heartbeat

    heartbeat.shutting_down.set()


@worker_shutdown.connect
def _close_model(**_kwargs) -> None:
    """Say this worker stopped; free the model while the interpreter is whole
    (Llama.__del__ at exit fails noisily)."""
    from analysis import heartbeat
    from analysis.inference.engine import reset_engine

    heartbeat.stop()
    reset_engine()
