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


class MediaAsset(models.Model):
    """One piece of evidence in a case: an immutable original plus what the media task derives.

    The original lives under a path made from the ids (analysis/media/storage.py), never from
    the client's file name, which is kept sanitized for display only. A deleted item keeps its
    row (hash, size, uploader, who deleted it and when) as proof; only the files go.
    """

    class Kind(models.TextChoices):
        IMAGE = "image", "Image"
        VIDEO = "video", "Video"
        AUDIO = "audio", "Audio"
        DOCUMENT = "document", "Document"

    class Status(models.TextChoices):
        PROCESSING = "processing", "Processing"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"
        DELETED = "deleted", "Deleted"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # PROTECT: evidence outlives nothing by accident; retention decides what goes, and when.
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="media")
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    filename = models.CharField(max_length=255)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    mime = models.CharField(max_length=100)
    detected = models.CharField(max_length=100)  # what sniffing + probing found, for people
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PROCESSING)
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

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["case", "-created_at"])]
        constraints = [
            # The same bytes are stored once per case; a deleted copy does not count.
            models.UniqueConstraint(
                fields=["case", "sha256"],
                condition=~Q(status="deleted"),
                name="one_copy_of_bytes_per_case",
            )
        ]

    def __str__(self) -> str:
        return f"{self.filename} ({self.kind}, {self.status})"

    @property
    def is_deleted(self) -> bool:
        return self.status == self.Status.DELETED

    @property
    def is_ready(self) -> bool:
        return self.status == self.Status.READY

    def finish_processing(self, *, metadata: dict, derived: dict) -> bool:
        """processing → ready; False when the item moved on meanwhile (deleted)."""
        return self._leave_processing(self.Status.READY, metadata=metadata, derived=derived)

    def fail_processing(self, reason: str) -> bool:
        return self._leave_processing(self.Status.FAILED, status_reason=reason[:2000])

    def _leave_processing(self, status: str, **fields) -> bool:
        rows = MediaAsset.objects.filter(pk=self.pk, status=self.Status.PROCESSING)
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
        rows = cls.objects.filter(case_id=case_id).exclude(status=cls.Status.DELETED)
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
    # Engine (issue 6): which registered model answered, how to reproduce it, and a cancel flag
    # the worker reads between tokens (a cheap, throttled query: see pipeline._cancel_watch).
    language_model = models.ForeignKey(
        "LanguageModel", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    response_schema = models.JSONField(null=True, blank=True)
    record = models.JSONField(default=dict, blank=True)
    reproduced_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="reproductions"
    )
    cancel_requested = models.BooleanField(default=False)
    # The items the question is about (issue 6 fills it; the media page lists it already).
    media = models.ManyToManyField(MediaAsset, blank=True, related_name="analyses")

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

    def request_cancel(self) -> bool:
        """Cancel a queued job at once; ask a running one to stop (its worker finishes it)."""
        now = timezone.now()
        queued = Analysis.objects.filter(pk=self.pk, status=self.Status.QUEUED)
        done = queued.update(status=self.Status.CANCELLED, finished_at=now, cancel_requested=True)
        if not done:
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


class AuditEvent(models.Model):
    """One link in a hash chain: who did what, when, from where (see analysis/audit.py).

    Rows are written only by `audit.record()` and never changed: database triggers refuse
    UPDATE and DELETE. Each case has its own chain; events outside any case (sign-in, staff
    actions) form the global chain (case is NULL). `seq` counts 1, 2, 3 ... per chain, and the
    partial unique constraints make a forked chain impossible even if a lock were missed.
    """

    class Action(models.TextChoices):
        # Every action the audit trail knows, including those whose features come later, so
        # the enumeration (and the filter on the audit page) is complete from the start.
        SIGN_IN = "auth.sign_in", "Signed in"
        SIGN_OUT = "auth.sign_out", "Signed out"
        SIGN_IN_FAILED = "auth.sign_in_failed", "Failed sign-in"
        CASE_CREATED = "case.created", "Case created"
        CASE_EDITED = "case.edited", "Case edited"
        CASE_CLOSED = "case.closed", "Case closed"
        CASE_ARCHIVED = "case.archived", "Case archived"
        CASE_REOPENED = "case.reopened", "Case reopened"
        CASE_EXPORTED = "case.exported", "Case report exported"
        MEMBER_ADDED = "member.added", "Member added"
        MEMBER_REMOVED = "member.removed", "Member removed"
        MEMBER_ROLE_CHANGED = "member.role_changed", "Member role changed"
        BREAK_GLASS_OPENED = "break_glass.opened", "Break-glass opened"
        BREAK_GLASS_EXPIRED = "break_glass.expired", "Break-glass expired"
        MEDIA_UPLOADED = "media.uploaded", "Media uploaded"
        MEDIA_VIEWED = "media.viewed", "Media viewed"
        MEDIA_DOWNLOADED = "media.downloaded", "Media downloaded"
        MEDIA_DELETED = "media.deleted", "Media deleted"
        MEDIA_HASH_VERIFIED = "media.hash_verified", "Media hash verified"
        MEDIA_HASH_MISMATCH = "media.hash_mismatch", "Media hash mismatch"
        ANALYSIS_ASKED = "analysis.asked", "Analysis asked"
        ANALYSIS_STARTED = "analysis.started", "Analysis started"
        ANALYSIS_FINISHED = "analysis.finished", "Analysis finished"
        ANALYSIS_FAILED = "analysis.failed", "Analysis failed"
        ANALYSIS_CANCELLED = "analysis.cancelled", "Analysis cancelled"
        ANALYSIS_REPRODUCED = "analysis.reproduced", "Analysis reproduced"
        ANALYSIS_VIEWED = "analysis.viewed", "Analysis viewed"
        AUDIT_EXPORTED = "audit.exported", "Audit trail exported"
        RETENTION_CHANGED = "retention.changed", "Retention changed"
        LEGAL_HOLD_SET = "retention.hold_set", "Legal hold set"
        LEGAL_HOLD_LIFTED = "retention.hold_lifted", "Legal hold lifted"
        PURGED = "retention.purged", "Purged"
        TOMBSTONE = "retention.tombstone", "Tombstone"
        MODEL_REGISTERED = "model.registered", "Model registered"
        MODEL_CHANGED = "model.changed", "Model changed"
        USER_CREATED = "user.created", "User created"
        USER_DEACTIVATED = "user.deactivated", "User deactivated"
        USER_ROLE_CHANGED = "user.role_changed", "User role changed"

    # Chosen by record() before the INSERT, so the hash can cover the row's own id.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # No index of its own: the unique (case, seq) index below serves case lookups.
    case = models.ForeignKey(
        Case,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="audit_events",
        db_index=False,
    )
    seq = models.PositiveBigIntegerField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    action = models.CharField(max_length=40, choices=Action.choices)
    target_type = models.CharField(max_length=40, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField()
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    details = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["-seq"]
        # Updating or deleting makes no sense for this model: only "view" and the auditor role.
        default_permissions = ("view",)
        permissions = [("audit_cases", "Can read and export every case's audit trail")]
        constraints = [
            models.UniqueConstraint(
                fields=["case", "seq"],
                condition=Q(case__isnull=False),
                name="one_audit_event_per_case_seq",
            ),
            models.UniqueConstraint(
                fields=["seq"],
                condition=Q(case__isnull=True),
                name="one_global_audit_event_per_seq",
            ),
        ]
        indexes = [models.Index(fields=["created_at"], name="audit_created_idx")]

    def __str__(self) -> str:
        return f"{self.chain_key}#{self.seq} {self.action}"

    @property
    def chain_key(self) -> str:
        return self.chain_key_for(self.case_id)

    @staticmethod
    def chain_key_for(case_id) -> str:
        """ "case:<uuid>" for a case's chain, "global" for events outside any case."""
        return f"case:{case_id}" if case_id else "global"


def default_sampler() -> dict:
    # Greedy by default: the same question on the same media gives the same answer.
    return {
        "temperature": 0.0,
        "top_k": 40,
        "top_p": 0.95,
        "min_p": 0.05,
        "repeat_penalty": 1.0,
        "seed": 0,
        "max_tokens": 512,
    }


class LanguageModel(models.Model):
    """A GGUF (+ optional mmproj) an administrator approved, by path and SHA-256.

    GGUF files are code-adjacent (parser CVEs, chat-template injection): they are never
    uploaded, and a file whose hash no longer matches refuses to load
    (analysis/inference/registry.py). Capabilities are read from the mmproj at registration.
    """

    name = models.CharField(max_length=100, unique=True)
    gguf_path = models.CharField(max_length=500)
    gguf_sha256 = models.CharField(max_length=64)
    mmproj_path = models.CharField(max_length=500, blank=True)
    mmproj_sha256 = models.CharField(max_length=64, blank=True)
    n_ctx = models.PositiveIntegerField(default=8192)
    n_gpu_layers = models.IntegerField(default=0)  # -1: all layers on the GPU
    n_threads = models.PositiveSmallIntegerField(default=0)  # 0: llama.cpp picks
    sampler = models.JSONField(default=default_sampler)
    has_vision = models.BooleanField(default=False)
    has_audio = models.BooleanField(default=False)
    is_default = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            # At most one default; registry.set_default keeps it at exactly one.
            models.UniqueConstraint(
                fields=["is_default"], condition=Q(is_default=True), name="one_default_model"
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def capabilities(self) -> list[str]:
        return ["text"] + ["image"] * self.has_vision + ["audio"] * self.has_audio

    @classmethod
    def default(cls) -> LanguageModel | None:
        return cls.objects.filter(is_default=True).first()
