"""Changes to user accounts, recorded on the global audit chain.

Accounts are managed in Django's admin (and the first one by `ensure_admin`); both call
`record_user_change` explicitly, inside the transaction that saves the account.
"""

from __future__ import annotations

from analysis import audit
from analysis.models import AuditEvent

# What makes up a user's "role" on the audit trail: staff, superuser and groups.
ROLE_FIELDS = ("is_staff", "is_superuser")


def role_of(user) -> dict:
    groups = sorted(user.groups.values_list("name", flat=True)) if user.pk else []
    return {**{field: getattr(user, field) for field in ROLE_FIELDS}, "groups": groups}


def record_user_change(user, *, before: dict | None, was_active: bool | None, request=None):
    """One event per kind of change: created, deactivated, role changed.

    `before` is `role_of(user)` taken before the change (None for a new account), and
    `was_active` the account's is_active then.
    """
    details = {"username": user.get_username()}
    if before is None:
        audit.record(
            AuditEvent.Action.USER_CREATED,
            target=user,
            request=request,
            details={**details, **role_of(user)},
        )
        return
    if was_active and not user.is_active:
        audit.record(
            AuditEvent.Action.USER_DEACTIVATED, target=user, request=request, details=details
        )
    after = role_of(user)
    if after != before:
        audit.record(
            AuditEvent.Action.USER_ROLE_CHANGED,
            target=user,
            request=request,
            details={**details, "from": before, "to": after},
        )
