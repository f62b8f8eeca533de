"""Proof of life from inside a worker process, read by the sweep (analysis/recovery.py).

One daemon thread per worker process, started when Celery says the worker is ready, writes
every ANALYSIS_HEARTBEAT_INTERVAL seconds:
- `heartbeat_at` on each Analysis this process holds: one row per job, so a worker that
  takes several jobs at once beats for each of them, and
- the process' WorkerHeartbeat row: host, pid, queues, model, current job, tokens/s.

A thread beats rather than the token stream: a long media prefill emits no tokens for a
while, and a worker waiting for a broker that is down is still alive.

The module also keeps the shutdown flag: a worker told to stop (SIGTERM, Ctrl-C) stops
generating at the next token and gives its job back without spending an attempt.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

from analysis.models import Analysis, WorkerHeartbeat

log = logging.getLogger(__name__)

# Set when the worker is told to stop: running jobs end at the next token and are requeued.
shutting_down = threading.Event()


@dataclass
class Held:
    """One job this process is running; the pipeline counts its tokens here."""

    analysis_id: object
    model_name: str = ""
    tokens: int = 0


class Beat:
    def __init__(self, name: str, queues: list[str], interval: float | None = None) -> None:
        self.name = name
        self.queues = queues
        self.pid = os.getpid()
        self.interval = settings.ANALYSIS_HEARTBEAT_INTERVAL if interval is None else interval
        self.held: dict[object, Held] = {}
        self.model_name = ""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last = (time.monotonic(), 0)  # when, and how many tokens had been counted then
        self._failing = False

    def start(self) -> None:
        now = timezone.now()
        WorkerHeartbeat.objects.update_or_create(
            name=self.name,
            defaults={
                "host": socket.gethostname(),
                "pid": self.pid,
                "queues": ",".join(self.queues),
                "started_at": now,
                "beat_at": now,
                "stopped_at": None,
                "current_analysis": None,
                "tokens_per_second": None,
            },
        )
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval + 5)
        WorkerHeartbeat.objects.filter(name=self.name, pid=self.pid).update(
            stopped_at=timezone.now(), current_analysis=None, tokens_per_second=None
        )

    @contextmanager
    def hold(self, analysis: Analysis) -> Iterator[Held]:
        held = Held(analysis.pk)
        with self._lock:
            self.held[analysis.pk] = held
        try:
            yield held
        finally:
            with self._lock:
                self.held.pop(analysis.pk, None)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                close_old_connections()
                self.beat_once()
                self._state(failing=False, error=None)
            except Exception as exc:  # noqa: BLE001 - a database blip must not end the thread
                connection.close()  # reconnect on the next beat
                self._state(failing=True, error=exc)
        connection.close()

    def beat_once(self) -> None:
        now = timezone.now()
        with self._lock:
            held = list(self.held.values())
        ids = [job.analysis_id for job in held]
        if ids:
            Analysis.objects.filter(
                pk__in=ids, status=Analysis.Status.RUNNING, worker=self.name, worker_pid=self.pid
            ).update(heartbeat_at=now)
        WorkerHeartbeat.objects.filter(name=self.name).update(
            pid=self.pid,
            beat_at=now,
            stopped_at=None,
            current_analysis_id=ids[0] if ids else None,
            model_name=next((job.model_name for job in held if job.model_name), self.model_name),
            tokens_per_second=self._rate(held),
        )

    def _rate(self, held: list[Held]) -> float | None:
        tokens = sum(job.tokens for job in held)
        when, before = self._last
        now = time.monotonic()
        self._last = (now, tokens)
        if not held or tokens < before:
            return None
        return round((tokens - before) / max(now - when, 1e-3), 1)

    def _state(self, *, failing: bool, error: Exception | None) -> None:
        """One log line when the database goes away and one when it is back, not one a beat."""
        if failing and not self._failing:
            log.warning("heartbeat: cannot reach the database (%s); retrying", error)
        elif not failing and self._failing:
            log.warning("heartbeat: database reachable again")
        self._failing = failing


_current: Beat | None = None


def start(name: str, queues: list[str]) -> Beat:
    global _current
    shutting_down.clear()
    _current = Beat(name, queues)
    _current.start()
    return _current


def stop() -> None:
    global _current
    if _current is not None:
        _current.stop()
        _current = None


def current() -> Beat | None:
    return _current


def identity() -> tuple[str, int]:
    """Who claims a job: this worker's node name (empty outside a worker) and pid."""
    return (_current.name if _current else "", os.getpid())


@contextmanager
def holding(analysis: Analysis) -> Iterator[Held]:
    """Beat for `analysis` while it runs (a no-op outside a worker, e.g. in a shell)."""
    if _current is None:
        yield Held(analysis.pk)
        return
    with _current.hold(analysis) as held:
        yield held
