"""The audit event: one link in a hash chain (written only by analysis.audit)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from analysis.models.cases import Case


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
        MEDIA_REJECTED = "media.rejected", "Media rejected"
        ANALYSIS_ASKED = "analysis.asked", "Analysis asked"
        ANALYSIS_STARTED = "analysis.started", "Analysis started"
        ANALYSIS_FINISHED = "analysis.finished", "Analysis finished"
        ANALYSIS_FAILED = "analysis.failed", "Analysis failed"
        ANALYSIS_CANCELLED = "analysis.cancelled", "Analysis cancelled"
        ANALYSIS_REQUEUED = "analysis.requeued", "Analysis queued again"
        ANALYSIS_REPRODUCED = "analysis.reproduced", "Analysis reproduced"
        ANALYSIS_VIEWED = "analysis.viewed", "Analysis viewed"
        ANSWER_MARKED = "analysis.marked", "Answer marked"
        NOTE_ADDED = "note.added", "Note added"
        AUDIT_EXPORTED = "audit.exported", "Audit trail exported"
        RETENTION_CHANGED = "retention.changed", "Retention changed"
        LEGAL_HOLD_SET = "retention.hold_set", "Legal hold set"
        LEGAL_HOLD_LIFTED = "retention.hold_lifted", "Legal hold lifted"
        PURGED = "retention.purged", "Purged"
        TOMBSTONE = "retention.tombstone", "Tombstone"
        # Early deletion under dual control: an owner asks, a different admin decides.
        DELETION_REQUESTED = "retention.requested", "Early deletion requested"
        DELETION_APPROVED = "retention.approved", "Early deletion approved"
        DELETION_REFUSED = "retention.refused", "Early deletion refused"
        MODEL_REGISTERED = "model.registered", "Model registered"
        MODEL_CHANGED = "model.changed", "Model changed"
        USER_CREATED = "user.created", "User created"
        USER_DEACTIVATED = "user.deactivated", "User deactivated"
        USER_ROLE_CHANGED = "user.role_changed", "User role changed"
        USER_INVITED = "user.invited", "User invited"
        USER_REACTIVATED = "user.reactivated", "User reactivated"
        PASSWORD_RESET = "user.password_reset", "Password reset by an admin"
        INVITATION_ACCEPTED = "user.invitation_accepted", "Invitation accepted"
        PASSWORD_CHANGED = "auth.password_changed", "Password changed"
        SIGN_IN_LOCKED_OUT = "auth.locked_out", "Sign-in locked out"
        SIGN_IN_UNLOCKED = "auth.unlocked", "Sign-in lockout lifted"
        SESSION_EXPIRED = "auth.session_expired", "Session ended by its lifetime"
        TWO_FACTOR_ENROLLED = "auth.2fa_enrolled", "Two-factor enrolled"
        TWO_FACTOR_VERIFIED = "auth.2fa_verified", "Two-factor code accepted"
        TWO_FACTOR_FAILED = "auth.2fa_failed", "Two-factor code refused"
        RECOVERY_CODE_USED = "auth.recovery_code_used", "Recovery code used"
        TWO_FACTOR_RESET = "user.2fa_reset", "Two-factor reset by an admin"
        # The reviewer's workflow: steering questions, templates, batches.
        ANALYSIS_CANCEL_REQUESTED = "analysis.cancel_requested", "Analysis cancel requested"
        ANALYSIS_RETRIED = "analysis.retried", "Analysis retried"
        BATCH_STARTED = "batch.started", "Batch started"
        TEMPLATE_SAVED = "template.saved", "Prompt template saved"
        TEMPLATE_DELETED = "template.deleted", "Prompt template deleted"

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
    # Set once, by retention, when the body (ip, user_agent, details) is cleared: the body's
    # hash as it was, so the chain still verifies (see analysis/audit.py, "tombstones").
    # NULL, not "": the triggers allow the one change from NULL to a 64-character hash.
    redacted_body_hash = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001

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
        indexes = [
            models.Index(fields=["created_at"], name="audit_created_idx"),
            # Retention finds the events about one purged item through it.
            models.Index(fields=["target_id"], name="audit_target_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.chain_key}#{self.seq} {self.action}"

    @property
    def chain_key(self) -> str:
        return self.chain_key_for(self.case_id)

    @staticmethod
    def chain_key_for(case_id) -> str:
        """ "case:<uuid>" for a case's chain, "global" for events outside any case."""
        return f"case:{case_id}" if case_id else "global"
