"""Cases — the unit of work and of access — their members, and break-glass grants."""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone


class Case(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"
        ARCHIVED = "archived", "Archived"
        # Fully purged by retention: the row stays as the tombstone its audit chain hangs on.
        PURGED = "purged", "Purged"

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
    # When the case left "open" (closed or archived): retention counts "after closing" from it.
    closed_at = models.DateTimeField(null=True, blank=True)
    purged_at = models.DateTimeField(null=True, blank=True)

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
        if target == self.Status.OPEN:
            self.closed_at = None
        elif self.closed_at is None:
            self.closed_at = timezone.now()
        self.save(update_fields=["status", "closed_at", "updated_at"])

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
