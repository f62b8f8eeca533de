"""Media items (immutable originals with their hash) and resumable uploads."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from analysis.models.cases import Case


class MediaAsset(models.Model):
    """One piece of evidence in a case: an immutable original plus what the media task derives.

    The original lives under a path made from the ids (analysis/media/storage.py), never from
    the client's file name, which is kept sanitized for display only. A deleted item keeps its
    row (hash, size, uploader, who deleted it and when) as proof; only the files go.
    """

    class Status(models.TextChoices):
        # Stored and sniffed; the media worker is probing it and making its previews.
        CHECKING = "checking", "Checking"
        READY = "ready", "Ready"
        # The probe refused it (or it broke the sandbox's limits): its files are gone.
        REJECTED = "rejected", "Rejected"
        FAILED = "failed", "Failed"
        DELETED = "deleted", "Deleted"
        # Its original was purged by retention (analysis/retention.py); the row is the proof.
        PURGED = "purged", "Purged"

    # Statuses whose bytes are no longer in the case (they hold no place and no quota).
    GONE = (Status.DELETED, Status.REJECTED, Status.PURGED)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # PROTECT: evidence outlives nothing by accident; retention decides what goes, and when.
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="media")
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    filename = models.CharField(max_length=255)
    kind = models.CharField(max_length=20)  # a kind in analysis/media/registry.py
    mime = models.CharField(max_length=100)
    detected = models.CharField(max_length=100)  # what sniffing + probing found, for people
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.CHECKING)
    status_reason = models.TextField(blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    derived = models.JSONField(default=dict, blank=True)  # role -> server-made file name(s)
    created_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    hash_verified_at = models.DateTimeField(null=True, blank=True)
    hash_mismatch = models.BooleanField(default=False)
    deleted_at = models.DateTimeField(null=True, blank=True)
    deleted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Set by retention when the original's file / the derived files were purged.
    purged_at = models.DateTimeField(null=True, blank=True)
    derived_purged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["case", "-created_at"])]
        constraints = [
            # The same bytes are stored once per case; a deleted or rejected copy does not count.
            models.UniqueConstraint(
                fields=["case", "sha256"],
                condition=~Q(status__in=["deleted", "rejected", "purged"]),
                name="one_copy_of_bytes_per_case",
            )
        ]

    def __str__(self) -> str:
        return f"{self.filename} ({self.kind}, {self.status})"

    @property
    def is_deleted(self) -> bool:
        return self.status == self.Status.DELETED

    @property
    def files_gone(self) -> bool:
        return self.status in self.GONE

    @property
    def is_ready(self) -> bool:
        return self.status == self.Status.READY

    @property
    def kind_label(self) -> str:
        from analysis.media import registry

        return registry.label(self.kind)

    def finish_checking(self, detected, *, metadata: dict, derived: dict) -> bool:
        """checking → ready with what the probe found; False when it moved on (deleted)."""
        return self._leave_checking(
            self.Status.READY, kind=detected.kind, mime=detected.mime,
            detected=detected.label[:100], metadata=metadata, derived=derived,
        )  # fmt: skip

    def reject(self, reason: str) -> bool:
        return self._leave_checking(self.Status.REJECTED, status_reason=reason[:2000], derived={})

    def fail_checking(self, reason: str) -> bool:
        return self._leave_checking(self.Status.FAILED, status_reason=reason[:2000])

    def _leave_checking(self, status: str, **fields) -> bool:
        rows = MediaAsset.objects.filter(pk=self.pk, status=self.Status.CHECKING)
        done = bool(rows.update(status=status, processed_at=timezone.now(), **fields))
        self.refresh_from_db()
        return done

    def mark_deleted(self, user) -> bool:
        rows = MediaAsset.objects.filter(pk=self.pk).exclude(status=self.Status.DELETED)
        done = bool(
            rows.update(
                status=self.Status.DELETED, deleted_at=timezone.now(), deleted_by=user, derived={}
            )
        )
        self.refresh_from_db()
        return done

    def record_hash_check(self, ok: bool) -> None:
        """A mismatch sticks: once seen, the item stays flagged even if a later check passes."""
        if ok:
            MediaAsset.objects.filter(pk=self.pk).update(hash_verified_at=timezone.now())
        else:
            MediaAsset.objects.filter(pk=self.pk).update(hash_mismatch=True)
        self.refresh_from_db(fields=["hash_verified_at", "hash_mismatch"])

    @classmethod
    def bytes_used(cls, case_id) -> int:
        rows = cls.objects.filter(case_id=case_id).exclude(status__in=cls.GONE)
        return rows.aggregate(total=models.Sum("size"))["total"] or 0


class MediaUpload(models.Model):
    """A resumable upload in progress: the bytes so far sit in a partial file (storage.py).

    `received` is the confirmed offset: what the last successful chunk left on disk. The row
    outlives the upload for a while (completed or rejected) so that a client that lost the
    final reply and retries gets the same answer; the beat task removes it at `expires_at`.
    """

    class Status(models.TextChoices):
        ACTIVE = "active", "Receiving"
        COMPLETE = "complete", "Complete"
        REJECTED = "rejected", "Rejected"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="uploads")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    filename = models.CharField(max_length=255)
    size = models.PositiveBigIntegerField()
    received = models.PositiveBigIntegerField(default=0)
    client_sha256 = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    reason = models.TextField(blank=True)
    asset = models.ForeignKey(
        MediaAsset, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    expires_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["expires_at"]), models.Index(fields=["case", "status"])]

    def __str__(self) -> str:
        return f"upload {self.filename} {self.received}/{self.size} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE

    @classmethod
    def reserved_bytes(cls, case_id) -> int:
        """Bytes promised to uploads still under way: they count against the case limit."""
        rows = cls.objects.filter(case_id=case_id, status=cls.Status.ACTIVE)
        return rows.aggregate(total=models.Sum("size"))["total"] or 0

    @classmethod
    def expired(cls, now=None):
        return cls.objects.filter(expires_at__lte=now or timezone.now())
