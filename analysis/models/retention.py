"""Retention: policies (global and per case), legal holds, early-deletion requests, and what
each purge run deleted (the certificate's rows). The decisions live in analysis/retention.py."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from analysis.models.cases import Case
from analysis.models.media import MediaAsset


class Anchor(models.TextChoices):
    CLOSED = "closed", "after the case is closed"
    UPLOADED = "uploaded", "after upload"
    ANSWERED = "answered", "after the answer"


# Which anchors make sense for each part a policy deletes.
SCOPES = {
    "originals": (Anchor.CLOSED, Anchor.UPLOADED),
    "derived": (Anchor.CLOSED, Anchor.UPLOADED),
    "analysis": (Anchor.CLOSED, Anchor.ANSWERED),
    "case": (Anchor.CLOSED,),
}
SCOPE_LABELS = {
    "originals": "originals",
    "derived": "derived files",
    "analysis": "analysis text",
    "case": "the whole case",
}


class RetentionPolicy(models.Model):
    """One row with no case is the global default; a row with a case overrides it whole.

    For each part, `<part>_days` empty means "keep forever"; otherwise the part goes that many
    days after its anchor. With no global row at all nothing is ever purged.
    """

    case = models.OneToOneField(
        Case, null=True, blank=True, on_delete=models.PROTECT, related_name="retention_policy"
    )
    originals_days = models.PositiveIntegerField(null=True, blank=True)
    originals_after = models.CharField(max_length=10, choices=Anchor.choices, default="closed")
    derived_days = models.PositiveIntegerField(null=True, blank=True)
    derived_after = models.CharField(max_length=10, choices=Anchor.choices, default="closed")
    analysis_days = models.PositiveIntegerField(null=True, blank=True)
    analysis_after = models.CharField(max_length=10, choices=Anchor.choices, default="closed")
    case_days = models.PositiveIntegerField(null=True, blank=True)
    case_after = models.CharField(max_length=10, choices=Anchor.choices, default="closed")
    # The tombstone of a fully purged case keeps its title (else "Purged case").
    keep_title = models.BooleanField(default=True)
    # Global row only: whether case owners may override it.
    allow_case_overrides = models.BooleanField(default=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"retention of {self.case_id or 'all cases'}"

    def rule(self, scope: str) -> tuple[int | None, str]:
        return getattr(self, f"{scope}_days"), getattr(self, f"{scope}_after")

    def as_dict(self) -> dict:
        rules = {scope: list(self.rule(scope)) for scope in SCOPES}
        return {"case": str(self.case_id) if self.case_id else None, **rules,
                "keep_title": self.keep_title}  # fmt: skip


class LegalHold(models.Model):
    """While any hold on a case is standing, nothing in it is purged, deleted or edited."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="legal_holds")
    reason = models.TextField()
    matter = models.CharField(max_length=100, blank=True)
    placed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    placed_at = models.DateTimeField(default=timezone.now)
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    lifted_at = models.DateTimeField(null=True, blank=True)
    lift_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["placed_at"]
        indexes = [models.Index(fields=["case", "lifted_at"])]

    def __str__(self) -> str:
        return f"hold on {self.case_id}: {self.reason[:40]}"

    @classmethod
    def standing(cls, case_id=None):
        rows = cls.objects.filter(lifted_at__isnull=True)
        return rows.filter(case_id=case_id) if case_id is not None else rows


class DeletionRequest(models.Model):
    """Early deletion under dual control: an owner asks, a different admin decides."""

    class State(models.TextChoices):
        PENDING = "pending", "Waiting for an admin"
        APPROVED = "approved", "Approved"
        REFUSED = "refused", "Refused"
        DONE = "done", "Deleted"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="deletion_requests")
    # Empty: the whole case.
    asset = models.ForeignKey(
        MediaAsset, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reason = models.TextField()
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    requested_at = models.DateTimeField(default=timezone.now)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True)

    class Meta:
        ordering = ["-requested_at"]
        indexes = [models.Index(fields=["state", "case"])]

    def __str__(self) -> str:
        what = self.asset_id or "whole case"
        return f"delete {what} of {self.case_id} ({self.state})"


class PurgeRun(models.Model):
    class State(models.TextChoices):
        RUNNING = "running", "Running"
        FINISHED = "finished", "Finished"
        # A run that stopped before its end; the next run certifies what it did.
        INTERRUPTED = "interrupted", "Interrupted"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    state = models.CharField(max_length=12, choices=State.choices, default=State.RUNNING)
    trigger = models.CharField(max_length=20, default="command")
    items = models.PositiveIntegerField(default=0)
    bytes = models.PositiveBigIntegerField(default=0)
    # SHA-256 of the run's certificate JSON, also on the global audit chain.
    certificate_sha256 = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"purge run {self.started_at:%Y-%m-%d %H:%M} ({self.state})"


class PurgeRecord(models.Model):
    """One part of one thing a purge deleted: written in the transaction that deleted it.

    The unique (kind, target) pair is what makes "nothing deleted twice" checkable.
    """

    class Kind(models.TextChoices):
        ORIGINAL = "original", "Original"
        DERIVED = "derived", "Derived files"
        ANALYSIS = "analysis", "Analysis text"
        CASE = "case", "Case"

    run = models.ForeignKey(PurgeRun, on_delete=models.PROTECT, related_name="records")
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    target_id = models.UUIDField()
    sha256 = models.CharField(max_length=64, blank=True)
    size = models.PositiveBigIntegerField(default=0)
    policy = models.JSONField(default=dict)  # the rule that applied, and where it came from
    due_at = models.DateTimeField(null=True, blank=True)
    purged_at = models.DateTimeField(default=timezone.now)
    # [[seq, body_hash], ...] of the audit events whose bodies this purge redacted.
    redacted = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "target_id"], name="one_purge_per_part")
        ]
        indexes = [models.Index(fields=["case", "id"])]

    def __str__(self) -> str:
        return f"purged {self.kind} {self.target_id}"
