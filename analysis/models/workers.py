"""The workers' own heartbeats: which worker processes are up and what each is doing.

Each Celery worker process writes its row every few seconds from a heartbeat thread (see
analysis/heartbeat.py). The jobs' heartbeats live on their Analysis rows, one per job, so a
worker holding several jobs at once beats for each; this row is the worker's summary for
operators.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone


class WorkerHeartbeat(models.Model):
    # The Celery node name ("inference@host"): one row per worker, kept across restarts.
    name = models.CharField(max_length=200, unique=True)
    host = models.CharField(max_length=200)
    pid = models.PositiveIntegerField()
    queues = models.CharField(max_length=200, blank=True)  # comma-separated, as in -Q
    model_name = models.CharField(max_length=200, blank=True)
    current_analysis = models.ForeignKey(
        "Analysis", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Completion tokens per second over the last heartbeat interval (None while idle).
    tokens_per_second = models.FloatField(null=True, blank=True)
    started_at = models.DateTimeField()
    beat_at = models.DateTimeField()
    # Set by a clean shutdown; a crashed worker just stops beating.
    stopped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} (pid {self.pid})"

    @property
    def queue_list(self) -> list[str]:
        return [queue for queue in self.queues.split(",") if queue]

    def is_down(self, now=None) -> bool:
        """Stopped, or silent for longer than the stale limit jobs get."""
        if self.stopped_at is not None:
            return True
        cutoff = (now or timezone.now()) - timedelta(seconds=settings.WORKER_DOWN_AFTER)
        return self.beat_at < cutoff
