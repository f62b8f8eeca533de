"""Who may see and change what. Every view, download, consumer and link builder asks here.

Anyone who may not see a case gets 404 for all of its URLs, guessed UUIDs included: a 403
would confirm that the case exists.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass

from django.db.models import QuerySet
from django.http import Http404

from analysis.models import Case, Membership

Role = Membership.Role


class Action(enum.StrEnum):
    VIEW = "view"  # read the case, its media and answers
    ASK = "ask"  # ask the model a question
    UPLOAD = "upload"
    COMMENT = "comment"
    MANAGE = "manage"  # members, settings, close / archive / reopen


# What each role may do on an open case. Closed and archived cases only allow VIEW, and
# owners may MANAGE them (that is how a case is reopened).
ROLE_ACTIONS: dict[str, frozenset[Action]] = {
    Role.OWNER: frozenset(Action),
    Role.REVIEWER: frozenset({Action.VIEW, Action.ASK, Action.UPLOAD, Action.COMMENT}),
    Role.VIEWER: frozenset({Action.VIEW}),
}
READ_ONLY_ACTIONS = frozenset({Action.VIEW, Action.MANAGE})


@dataclass(frozen=True)
class CaseAccess:
    case: Case
    role: str | None

    def can(self, action: Action) -> bool:
        if self.role is None or action not in ROLE_ACTIONS[self.role]:
            return False
        return self.case.is_writable or action in READ_ONLY_ACTIONS


def visible_cases(user) -> QuerySet[Case]:
    """The cases a user is a member of (the "my cases" list)."""
    if not user.is_authenticated or not user.is_active:
        return Case.objects.none()
    return Case.objects.filter(memberships__user=user)


def role_of(user, case: Case) -> str | None:
    if not user.is_authenticated or not user.is_active:
        return None
    return Membership.objects.filter(case=case, user=user).values_list("role", flat=True).first()


def case_access(user, case_id: uuid.UUID | str) -> CaseAccess | None:
    """The case and the user's role in it, or None when the user may not see it at all."""
    try:
        case = Case.objects.get(pk=case_id)
    except (Case.DoesNotExist, ValueError, TypeError):
        return None
    role = role_of(user, case)
    if role is None:
        return None
    return CaseAccess(case, role)


def get_case_or_404(user, case_id, action: Action = Action.VIEW) -> CaseAccess:
    """The case if the user may do `action` in it; 404 if they may not even see it.

    A member who may see the case but not do `action` gets PermissionDenied (403): they
    already know the case exists, and a 404 would only confuse them.
    """
    from django.core.exceptions import PermissionDenied

    access = case_access(user, case_id)
    if access is None or not access.can(Action.VIEW):
        raise Http404("No such case.")
    if not access.can(action):
        raise PermissionDenied("Your role in this case does not allow that.")
    return access
