"""Analyses and their token log.

State changes live here as methods, so views, tasks and the sweep share one definition of
what "start", "succeed" and "fail" mean. Transitions are conditional UPDATEs: a redelivered
Celery message or a racing sweep can never move a finished analysis back to running.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.conf import settings
from django.db import models, transaction
from django.db.models import F, Q
from django.utils import timezone

from analysis import metrics
from analysis.models.cases import Case
from analysis.models.media import MediaAsset

OUT_OF_ATTEMPTS = (
    "Failed after {attempts} attempts: the worker stopped each time while answering. "
    "The inference worker's log says why (often memory, or a model that crashes on this "
    "media); fix that, then ask again."
)


class Analysis(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)
    # Redis keeps no delivery count, so the database does: a job that killed its worker this
    # many times is failed instead of being handed to the next worker forever.
    MAX_ATTEMPTS = 3

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="analyses")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    question = models.TextField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    answer = models.TextField(blank=True)
    error = models.TextField(blank=True)
    model_name = models.CharField(max_length=200, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Touched by the holding worker's heartbeat thread; the sweep requeues (or, out of
    # attempts, fails) a running job whose worker went silent.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # The claim: which worker process holds the running job. Every write the worker makes
    # afterwards is conditional on it, so a job taken back from a silent worker and handed to
    # another is never finished (or streamed into) by both.
    worker = models.CharField(max_length=200, blank=True)
    worker_pid = models.PositiveIntegerField(null=True, blank=True)
    # When a message for the job was last handed to the broker: a queued job whose message
    # was lost (broker down when asked, or killed before its disk write) is sent again.
    dispatched_at = models.DateTimeField(null=True, blank=True)
    # Which registered model answered, how to reproduce it, and a cancel flag
    # the worker reads between tokens (a cheap, throttled query: see pipeline.StopWatch).
    language_model = models.ForeignKey(
        "LanguageModel", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    response_schema = models.JSONField(null=True, blank=True)
    record = models.JSONField(default=dict, blank=True)
    reproduced_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="reproductions"
    )
    cancel_requested = models.BooleanField(default=False)
    # The items the question is about.
    media = models.ManyToManyField(MediaAsset, blank=True, related_name="analyses")
    # A follow-up continues a thread: the earlier turns go into its prompt, oldest first.
    follows = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="follow_ups"
    )
    template = models.ForeignKey(
        "PromptTemplate", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    batch = models.ForeignKey(
        "Batch", null=True, blank=True, on_delete=models.SET_NULL, related_name="analyses"
    )
    # Overrides of the model's sampler defaults (from a template).
    sampler = models.JSONField(default=dict, blank=True)
    # A failed job asked again: the new analysis points at the one it retries.
    retry_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="retries"
    )
    # Retention purged its text (question, answer, token log, prompts in the record).
    text_purged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["case", "-created_at"]), models.Index(fields=["status"])]

    def __str__(self) -> str:
        return f"{self.question[:40]} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def status_label(self) -> str:
        """What the reviewer reads on the badge: a retry says which attempt it is."""
        retrying = (self.status == self.Status.QUEUED and self.attempts > 0) or (
            self.status == self.Status.RUNNING and self.attempts > 1
        )
        if not retrying:
            return self.get_status_display()
        attempt = self.attempts + (self.status == self.Status.QUEUED)
        return f"Retrying (attempt {attempt} of {self.MAX_ATTEMPTS})"

    def start(self, worker: str = "", pid: int | None = None) -> bool:
        """Claim a queued job for one worker process; False when someone else holds it, it is
        finished, or it is out of attempts (then it is failed here).

        Only a queued job can be claimed: a running one belongs to its worker until that
        worker gives it back or the sweep takes it back, so no answer runs twice at once.
        """
        now = timezone.now()
        rows = Analysis.objects.filter(
            pk=self.pk, status=self.Status.QUEUED, attempts__lt=self.MAX_ATTEMPTS
        )
        claimed = rows.update(
            status=self.Status.RUNNING,
            attempts=F("attempts") + 1,
            started_at=now,
            heartbeat_at=now,
            worker=worker,
            worker_pid=pid,
        )
        self.refresh_from_db()
        if not claimed:
            if self.status == self.Status.QUEUED:
                self.fail(OUT_OF_ATTEMPTS.format(attempts=self.attempts))
            return False
        # What this instance holds, kept apart from fields a later refresh may change.
        self.claim = (self.worker, self.worker_pid)
        # Each attempt starts its answer again from the first token.
        self.chunks.all().delete()
        return True

    def requeue(self, *, spent: bool, silent_since=None) -> bool:
        """Give a running job back to the queue; False when it was not running (any more).

        `spent`: whether the interrupted attempt counts (a crash does; a clean shutdown
        does not). `silent_since`: only if its heartbeat is older (the sweep's condition, so
        a worker that beat meanwhile keeps its job).
        """
        rows = Analysis.objects.filter(pk=self.pk, status=self.Status.RUNNING)
        if silent_since is not None:
            rows = rows.filter(heartbeat_at__lt=silent_since)
        else:
            worker, pid = getattr(self, "claim", None) or (self.worker, self.worker_pid)
            rows = rows.filter(worker=worker, worker_pid=pid)
        fields = {"attempts": F("attempts") - (0 if spent else 1)}
        # Not sent yet: if sending it fails now, the sweep sends it at its next run.
        done = rows.update(
            status=self.Status.QUEUED,
            started_at=None,
            worker="",
            worker_pid=None,
            dispatched_at=None,
            **fields,
        )
        if done:
            self.chunks.all().delete()
            _count_on_commit("retried")
        self.refresh_from_db()
        return bool(done)

    def dispatched(self) -> None:
        Analysis.objects.filter(pk=self.pk).update(dispatched_at=timezone.now())

    def succeed(self, answer: str, *, prompt_tokens: int, completion_tokens: int) -> bool:
        return self._finish(
            self.Status.SUCCEEDED,
            answer=answer,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
        )

    def fail(self, reason: str) -> bool:
        # Keep whatever streamed before the failure: a reviewer may still want to read it.
        partial = "".join(self.chunks.order_by("seq").values_list("text", flat=True))
        return self._finish(self.Status.FAILED, error=reason[:2000], answer=partial)

    def request_cancel(self) -> bool:
        """Cancel a queued job at once; ask a running one to stop (its worker finishes it)."""
        now = timezone.now()
        queued = Analysis.objects.filter(pk=self.pk, status=self.Status.QUEUED)
        done = queued.update(status=self.Status.CANCELLED, finished_at=now, cancel_requested=True)
        if done:
            _count_on_commit(self.Status.CANCELLED)
        else:
            running = Analysis.objects.filter(pk=self.pk, status=self.Status.RUNNING)
            done = running.update(cancel_requested=True)
        self.refresh_from_db()
        return bool(done)

    def cancel(self) -> bool:
        """The worker stopped on request: keep the partial answer."""
        partial = "".join(self.chunks.order_by("seq").values_list("text", flat=True))
        return self._finish(self.Status.CANCELLED, answer=partial)

    def _finish(self, status: str, **fields) -> bool:
        now = timezone.now()
        rows = Analysis.objects.filter(pk=self.pk).exclude(status__in=self.FINISHED)
        claim = getattr(self, "claim", None)
        if claim is None and self.status == self.Status.RUNNING:
            claim = (self.worker, self.worker_pid)  # the sweep, finishing for a dead worker
        if claim is not None:
            # Finished by the claim's holder only: never by a worker that lost it.
            rows = rows.filter(worker=claim[0], worker_pid=claim[1])
        done = bool(rows.update(status=status, finished_at=now, heartbeat_at=now, **fields))
        if done:
            _count_on_commit(status)
        self.refresh_from_db()
        return done

    def ask_again(self, user, **links) -> Analysis:
        """A new queued analysis of the same question: same items, thread turn, template and
        settings (`links` says why: reproduced_from=, retry_of=)."""
        copy = Analysis.objects.create(
            case_id=self.case_id,
            created_by=user,
            question=self.question,
            response_schema=self.response_schema,
            # The same turn of the same thread: the earlier turns go into its prompt again.
            follows=self.follows,
            template=self.template,
            sampler=self.sampler,
            batch=self.batch,
            **links,
        )
        copy.media.set(self.media.all())
        return copy

    @property
    def cut_at_limit(self) -> bool:
        """The answer stopped because it reached its token limit, not because it ended."""
        return self.status == self.Status.SUCCEEDED and self.record.get("finish_reason") == "length"

    def turns(self) -> list[Analysis]:
        """The earlier turns of this analysis' thread, oldest first (bounded: a cycle or a
        very long thread cannot make it loop)."""
        chain: list[Analysis] = []
        seen = {self.pk}
        earlier = self.follows
        while earlier is not None and earlier.pk not in seen and len(chain) < 50:
            chain.append(earlier)
            seen.add(earlier.pk)
            earlier = earlier.follows
        return chain[::-1]

    def thread_root(self) -> Analysis:
        turns = self.turns()
        return turns[0] if turns else self

    def streamed_text(self) -> tuple[str, int]:
        """The answer so far and the last chunk's sequence number (0 when none)."""
        rows = list(self.chunks.order_by("seq").values_list("seq", "text"))
        return "".join(text for _, text in rows), (rows[-1][0] if rows else 0)

    @staticmethod
    def stale_cutoff(now=None):
        return (now or timezone.now()) - timedelta(seconds=settings.ANALYSIS_STALE_AFTER)

    @classmethod
    def stale(cls, now=None):
        """Running jobs whose worker stopped sending heartbeats."""
        return cls.objects.filter(status=cls.Status.RUNNING, heartbeat_at__lt=cls.stale_cutoff(now))

    @classmethod
    def undispatched(cls, now=None):
        """Queued jobs whose message may have been lost: never sent, or sent long ago."""
        now = now or timezone.now()
        cutoff = now - timedelta(seconds=settings.ANALYSIS_REDISPATCH_AFTER)
        # A question just asked is being sent by its request right now: leave it a moment.
        never_sent = Q(dispatched_at__isnull=True, created_at__lt=now - timedelta(seconds=5))
        return cls.objects.filter(status=cls.Status.QUEUED).filter(
            never_sent | Q(dispatched_at__lt=cutoff)
        )


class AnalysisChunk(models.Model):
    """The persistent token log: browsers that (re)connect resume from a sequence number."""

    analysis = models.ForeignKey(Analysis, on_delete=models.CASCADE, related_name="chunks")
    seq = models.PositiveIntegerField()
    text = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["seq"]
        constraints = [
            models.UniqueConstraint(fields=["analysis", "seq"], name="one_chunk_per_seq")
        ]

    def __str__(self) -> str:
        return f"{self.analysis_id}#{self.seq}"


def _count_on_commit(outcome: str) -> None:
    """Outcomes are counted where the row changes state, the one place every path (worker,
    sweep, a reviewer's cancel) goes through; after commit, so a rolled-back change is not
    counted."""
    transaction.on_commit(lambda: metrics.count_question(str(outcome)))
