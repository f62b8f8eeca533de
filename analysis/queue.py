"""Where a question stands in the inference queue, and when it should start.

The estimate comes from what was measured: the decode speed (tokens/s) and answer length of
the latest finished jobs, their time before the first token, and the jobs ahead (the running
ones, partly done, and those queued earlier, in every case: the queue is shared).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from analysis.models import Analysis

RECENT = 20  # finished jobs the speed is measured on


@dataclass(frozen=True)
class Speed:
    tokens_per_s: float
    answer_tokens: float
    first_token_s: float

    @property
    def job_seconds(self) -> float:
        rate = self.tokens_per_s or 1.0
        return self.first_token_s + self.answer_tokens / rate


def measured_speed() -> Speed:
    """Medians over the latest finished jobs; the configured answer length when none ran."""
    rows = (
        Analysis.objects.filter(status=Analysis.Status.SUCCEEDED, completion_tokens__gt=0)
        .order_by("-finished_at")
        .values_list("record", "completion_tokens")[:RECENT]
    )
    rates, lengths, firsts = [], [], []
    for record, tokens in rows:
        timings = (record or {}).get("timings") or {}
        if timings.get("tokens_per_s"):
            rates.append(float(timings["tokens_per_s"]))
            firsts.append(float(timings.get("time_to_first_token_s", 0.0)))
            lengths.append(tokens)
    if not rates:
        return Speed(0.0, float(settings.GEMMA_MAX_TOKENS), 0.0)
    return Speed(statistics.median(rates), statistics.median(lengths), statistics.median(firsts))


@dataclass(frozen=True)
class Place:
    position: int  # 1: the next queued job to start
    running: int  # jobs running now, ahead of every queued one
    starts_at: datetime | None  # None while nothing was measured yet

    def as_dict(self) -> dict:
        return {
            "position": self.position,
            "running": self.running,
            "starts_at": self.starts_at.isoformat() if self.starts_at else None,
        }


def places(analyses, now: datetime | None = None) -> dict[str, Place]:
    """The place of each queued analysis in `analyses` (by id), in one pass over the queue."""
    wanted = {str(a.pk) for a in analyses if a.status == Analysis.Status.QUEUED}
    if not wanted:
        return {}
    now = now or timezone.now()
    speed = measured_speed()
    measured = speed.tokens_per_s > 0
    running = Analysis.objects.filter(status=Analysis.Status.RUNNING).values_list("started_at")
    # A running job has done part of its work: what is left of a typical job, at least none.
    wait = sum(
        max(0.0, speed.job_seconds - ((now - started).total_seconds() if started else 0.0))
        for (started,) in running
    )
    running_now = len(running)
    found: dict[str, Place] = {}
    queued = Analysis.objects.filter(status=Analysis.Status.QUEUED).order_by("created_at", "pk")
    for ahead, pk in enumerate(queued.values_list("pk", flat=True).iterator()):  # noqa: B007
        key = str(pk)
        if key in wanted:
            start = now + timedelta(seconds=wait) if measured else None
            found[key] = Place(ahead + 1, running_now, start)
            if len(found) == len(wanted):
                break
        wait += speed.job_seconds
    return found
