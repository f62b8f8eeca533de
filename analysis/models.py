"""Domain models: cases (the unit of work and of access), their members, and analyses.

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


class Case(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"
        ARCHIVED = "archived", "Archived"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    title = models.CharField(max_length=200)
    # Free text such as "2026-LIT-0042"; unique when given, several cases may leave it blank.
    reference = models.CharField(max_length=100, null=True, blank=True, unique=True)
    description = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]
        indexes = [models.Index(fields=["status", "-updated_at"])]

    def __str__(self) -> str:
        return self.title

    @property
    def is_writable(self) -> bool:
        """Closed and archived cases are read-only for everyone."""
        return self.status == self.Status.OPEN

    # Which status changes an owner may make, and from where.
    TRANSITIONS = {
        "close": ({Status.OPEN}, Status.CLOSED),
        "archive": ({Status.OPEN, Status.CLOSED}, Status.ARCHIVED),
        "reopen": ({Status.CLOSED, Status.ARCHIVED}, Status.OPEN),
    }

    def can_transition(self, verb: str) -> bool:
        sources, _ = self.TRANSITIONS.get(verb, ((), None))
        return self.status in sources

    def transition(self, verb: str) -> None:
        sources, target = self.TRANSITIONS[verb]
        if self.status not in sources:
            raise ValueError(f"A {self.status} case cannot be {verb}d.")
        self.status = target
        self.save(update_fields=["status", "updated_at"])

    @classmethod
    @transaction.atomic
    def create_with_owner(cls, *, user, **fields) -> Case:
        case = cls.objects.create(created_by=user, **fields)
        Membership.objects.create(case=case, user=user, role=Membership.Role.OWNER)
        return case


class Membership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        REVIEWER = "reviewer", "Reviewer"
        VIEWER = "viewer", "Viewer"

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["case", "user"], name="one_membership_per_user")
        ]

    def __str__(self) -> str:
        return f"{self.user} ({self.role}) in {self.case}"

    def is_last_owner(self) -> bool:
        """A case always keeps at least one owner: the last one cannot leave or step down."""
        if self.role != self.Role.OWNER:
            return False
        owners = Membership.objects.filter(case_id=self.case_id, role=self.Role.OWNER)
        return not owners.exclude(pk=self.pk).exists()


class BreakGlass(models.Model):
    """Time-limited read access for a staff member who is not in the case, with a reason.

    Staff see case metadata on staff pages; media and answers stay behind the need-to-know
    wall unless they open one of these. Every grant is kept (the audit trail reads them).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="break_glasses")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    reason = models.TextField()
    opened_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    # Set once the expiry has been written to the audit trail by the periodic sweep.
    expiry_recorded = models.BooleanField(default=False)

    class Meta:
        ordering = ["-opened_at"]
        indexes = [models.Index(fields=["case", "user", "expires_at"])]

    def __str__(self) -> str:
        return f"break-glass by {self.user} on {self.case} until {self.expires_at:%Y-%m-%d %H:%M}"

    @property
    def is_active(self) -> bool:
        return self.expires_at > timezone.now()

    @classmethod
    def open(cls, *, case: Case, user, reason: str) -> BreakGlass:
        now = timezone.now()
        return cls.objects.create(
            case=case,
            user=user,
            reason=reason,
            opened_at=now,
            expires_at=now + timedelta(seconds=settings.BREAK_GLASS_SECONDS),
        )

    @classmethod
    def active(cls, case: Case | None = None):
        rows = cls.objects.filter(expires_at__gt=timezone.now())
        return rows.filter(case=case) if case is not None else rows

    @classmethod
    def expired_unrecorded(cls):
        return cls.objects.filter(expires_at__lte=timezone.now(), expiry_recorded=False)


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
    # Touched while tokens flow; the sweep fails a running job whose worker went silent.
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["case", "-created_at"]), models.Index(fields=["status"])]

    def __str__(self) -> str:
        return f"{self.question[:40]} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    def start(self) -> bool:
        """Claim the job for this worker; False when it is finished or out of attempts."""
        now = timezone.now()
        claimable = Q(status=self.Status.QUEUED) | Q(status=self.Status.RUNNING)
        rows = Analysis.objects.filter(claimable, pk=self.pk, attempts__lt=self.MAX_ATTEMPTS)
        if not rows.update(
            status=self.Status.RUNNING, attempts=F("attempts") + 1, started_at=now, heartbeat_at=now
        ):
            self.refresh_from_db()
            if not self.is_finished:
                self.fail(f"Gave up after {self.attempts} attempts: the worker kept stopping.")
            return False
        self.refresh_from_db()
        # A redelivered job starts its answer again from the first token.
        self.chunks.all().delete()
        return True

    def heartbeat(self) -> None:
        Analysis.objects.filter(pk=self.pk, status=self.Status.RUNNING).update(
            heartbeat_at=timezone.now()
        )

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

    def _finish(self, status: str, **fields) -> bool:
        now = timezone.now()
        rows = Analysis.objects.filter(pk=self.pk).exclude(status__in=self.FINISHED)
        done = bool(rows.update(status=status, finished_at=now, heartbeat_at=now, **fields))
        self.refresh_from_db()
        return done

    def streamed_text(self) -> tuple[str, int]:
        """The answer so far and the last chunk's sequence number (0 when none)."""
        rows = list(self.chunks.order_by("seq").values_list("seq", "text"))
        return "".join(text for _, text in rows), (rows[-1][0] if rows else 0)

    @classmethod
    def stale(cls, now=None):
        """Running jobs whose worker stopped sending heartbeats."""
        now = now or timezone.now()
        cutoff = now - timedelta(seconds=settings.ANALYSIS_STALE_AFTER)
        return cls.objects.filter(status=cls.Status.RUNNING, heartbeat_at__lt=cutoff)


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
