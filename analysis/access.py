"""Who may see and change what. Every view, download, consumer and link builder asks here.

Anyone who may not see a case gets 404 for all of its URLs, guessed UUIDs included: a 403
would confirm that the case exists. Members who may see a case but not do something in it
get 403 — they already know it exists.

Staff administrators stand outside the need-to-know wall: they see case *metadata* on staff
pages, never media or answers, unless they are members or hold an active break-glass grant
(read-only, time-limited, with a typed reason, kept for the audit trail).
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F, QuerySet
from django.http import Http404

from analysis.models import BreakGlass, Case, LegalHold, Membership

Role = Membership.Role
# Not a membership role: what an active break-glass grant gives a staff member.
BREAK_GLASS = "break-glass"


class Action(enum.StrEnum):
    VIEW = "view"  # read the case, its media and answers
    ASK = "ask"  # ask the model a question
    UPLOAD = "upload"
    DELETE_MEDIA = "delete_media"  # remove an item's files (its row stays as proof)
    COMMENT = "comment"
    MANAGE = "manage"  # edit the case, manage members
    SET_STATUS = "set_status"  # close / archive / reopen
    READ_AUDIT = "read_audit"  # read the case's audit trail (every member: the wall is visible)
    AUDIT = "audit"  # export and verify the case's audit trail
    HOLD = "hold"  # place or lift a legal hold (staff admins may too, from outside)
    REQUEST_DELETION = "request_deletion"  # ask for early deletion (a different admin decides)


ROLE_ACTIONS: dict[str, frozenset[Action]] = {
    Role.OWNER: frozenset(Action),
    Role.REVIEWER: frozenset(
        {Action.VIEW, Action.ASK, Action.UPLOAD, Action.COMMENT, Action.READ_AUDIT}
    ),
    Role.VIEWER: frozenset({Action.VIEW, Action.READ_AUDIT}),
    BREAK_GLASS: frozenset({Action.VIEW}),
}
# A closed or archived case is read-only for everyone; its owners may only change its status
# (that is how it is reopened).
ACTIONS_ON_READ_ONLY_CASE = frozenset(
    {
        Action.VIEW, Action.SET_STATUS, Action.AUDIT, Action.READ_AUDIT, Action.HOLD,
        Action.REQUEST_DELETION,
    }
)  # fmt: skip
# Under legal hold the case is frozen as it stands: nothing added, changed or removed by
# anyone (its status included), so the evidence is what it was when the hold was placed.
# Reading stays, and so does reading and exporting the audit trail.
ACTIONS_UNDER_HOLD = frozenset({Action.VIEW, Action.AUDIT, Action.READ_AUDIT, Action.HOLD})


@dataclass(frozen=True)
class CaseAccess:
    case: Case
    role: str | None
    break_glass: BreakGlass | None = None
    holds: tuple = ()  # the legal holds standing on the case

    @property
    def held(self) -> bool:
        return bool(self.holds)

    def refused_by_hold(self, action: Action) -> bool:
        return self.held and action not in ACTIONS_UNDER_HOLD

    @property
    def hold_reasons(self) -> str:
        return "; ".join(
            h.reason + (f" (matter {h.matter})" if h.matter else "") for h in self.holds
        )

    @property
    def held_refusals_matter(self) -> bool:
        """Whether the page should say why its changing controls are gone: held, and this
        user could otherwise change something."""
        return self.held and self.role in (Role.OWNER, Role.REVIEWER)

    @property
    def hold_reason(self) -> str:
        from analysis.retention import hold_message

        return hold_message(list(self.holds)) if self.holds else ""

    @property
    def is_member(self) -> bool:
        """One of the case's members (not staff reading it under break-glass)."""
        return self.role is not None and self.break_glass is None

    def can(self, action: Action) -> bool:
        if self.role is None or action not in ROLE_ACTIONS[self.role]:
            return False
        if self.refused_by_hold(action):
            return False
        return self.case.is_writable or action in ACTIONS_ON_READ_ONLY_CASE


def _active_user(user) -> bool:
    return bool(user and user.is_authenticated and user.is_active)


def is_staff(user) -> bool:
    """The admin staff role: user administration, case metadata, break-glass."""
    return _active_user(user) and user.is_staff


is_admin = is_staff


def visible_cases(user) -> QuerySet[Case]:
    """The cases a user is a member of, each annotated with `my_role`."""
    if not _active_user(user):
        return Case.objects.none()
    # The join is filtered to this user, so F() reads this user's own membership row.
    return Case.objects.filter(memberships__user=user).annotate(my_role=F("memberships__role"))


def staff_cases(user) -> QuerySet[Case]:
    """All cases, for staff metadata pages only (no media, no answers)."""
    if not is_staff(user):
        return Case.objects.none()
    return Case.objects.all()


def _parse_case_id(case_id) -> uuid.UUID | None:
    try:
        return case_id if isinstance(case_id, uuid.UUID) else uuid.UUID(str(case_id))
    except (ValueError, TypeError, AttributeError, ValidationError):
        return None


def case_access(user, case_id) -> CaseAccess | None:
    """The case and the user's standing in it, or None when the user may not see it at all."""
    case_uuid = _parse_case_id(case_id)
    if case_uuid is None or not _active_user(user):
        return None
    case = Case.objects.filter(pk=case_uuid).first()
    if case is None:
        return None
    role = Membership.objects.filter(case=case, user=user).values_list("role", flat=True).first()
    if role is not None:
        return CaseAccess(case, role, holds=_holds(case))
    if user.is_staff:
        grant = BreakGlass.active(case).filter(user=user).first()
        if grant is not None:
            return CaseAccess(case, BREAK_GLASS, grant, holds=_holds(case))
    return None


def _holds(case: Case) -> tuple:
    return tuple(LegalHold.standing(case.pk).select_related("placed_by"))


def get_case_or_404(user, case_id, action: Action = Action.VIEW) -> CaseAccess:
    """The case if the user may do `action` in it; 404 if they may not even see it."""
    access = case_access(user, case_id)
    if access is None or not access.can(Action.VIEW):
        raise Http404("No such case.")
    if not access.can(action):
        if access.refused_by_hold(action) and action in ROLE_ACTIONS[access.role]:
            raise PermissionDenied(access.hold_reason)
        raise PermissionDenied("Your role in this case does not allow that.")
    return access


def get_case_for_staff_or_404(user, case_id) -> Case:
    """Case metadata for staff pages (break-glass form): staff only, everyone else 404."""
    case_uuid = _parse_case_id(case_id)
    case = Case.objects.filter(pk=case_uuid).first() if case_uuid and is_staff(user) else None
    if case is None:
        raise Http404("No such case.")
    return case


def is_auditor(user) -> bool:
    """The auditor staff role (permission analysis.audit_cases): every audit trail, read-only.

    Nothing else comes with it: no staff pages, no break-glass, no media or answers.
    """
    return _active_user(user) and user.has_perm("analysis.audit_cases")


def may_audit(user, case: Case) -> bool:
    if is_auditor(user):
        return True
    access = case_access(user, case.pk)
    return access is not None and access.can(Action.AUDIT)


def get_case_to_audit_or_404(user, case_id, action: Action = Action.AUDIT) -> Case:
    """The case whose audit trail `user` may read (every member) or export and verify
    (owners), and staff auditors both.

    Members without the right get 403 (they know the case exists), everyone else 404.
    """
    if is_auditor(user):
        case_uuid = _parse_case_id(case_id)
        case = Case.objects.filter(pk=case_uuid).first() if case_uuid else None
        if case is None:
            raise Http404("No such case.")
        return case
    return get_case_or_404(user, case_id, action).case


def record_break_glass_expiries() -> int:
    """Write each lapsed break-glass grant's expiry to the case's audit trail, once (beat)."""
    from analysis import audit
    from analysis.models import AuditEvent

    recorded = 0
    for grant in BreakGlass.expired_unrecorded().select_related("user"):
        with transaction.atomic():
            # Only the call that flips the flag records: two sweeps never write it twice.
            flipped = BreakGlass.objects.filter(pk=grant.pk, expiry_recorded=False).update(
                expiry_recorded=True
            )
            if flipped:
                audit.record(
                    AuditEvent.Action.BREAK_GLASS_EXPIRED,
                    case=grant.case_id,
                    target=grant,
                    details={
                        "user": grant.user.get_username(),
                        "opened_at": grant.opened_at.isoformat(),
                    },
                )
                recorded += 1
    return recorded


def socket_access(user, session_key: str | None, case_id) -> CaseAccess | None:
    """What a live socket may still see: the account re-read (still active?), its session
    still valid (not signed out, expired or half-verified), then the case as for a page."""
    from django.contrib.auth import get_user_model

    from analysis import signin

    if not _active_user(user) or not session_key:
        return None
    fresh = get_user_model()._default_manager.filter(pk=user.pk, is_active=True).first()
    if fresh is None or signin.stored_session_problem(fresh, session_key) is not None:
        return None
    found = case_access(fresh, case_id)
    return found if found is not None and found.can(Action.VIEW) else None
