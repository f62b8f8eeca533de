from __future__ import annotations

import logging
import os

from celery import Celery
from celery.signals import worker_ready, worker_shutdown

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gemma_web.settings")

app = Celery("gemma_web")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_ready.connect
def _preload_model(**_kwargs) -> None:
    """Inference workers load the model at start, so the first question does not wait for it.

    Only workers started with GEMMA_PRELOAD_MODEL=1 (the inference queue) do this; a failure is
    logged and each task then fails with the reason instead of the worker refusing to start.
    """
    if os.environ.get("GEMMA_PRELOAD_MODEL") != "1":
        return
    from analysis.inference.engine import EngineError, get_engine

    try:
        get_engine()
    except EngineError:
        logging.getLogger(__name__).exception("could not preload the model")


@worker_shutdown.connect
def _close_model(**_kwargs) -> None:
    """Free the model while the interpreter is whole (Llama.__del__ at exit fails noisily)."""
    from analysis.inference.engine import reset_engine

    reset_engine()
