"""Changes to user accounts, recorded on the global audit chain.

Admins manage accounts on the staff user pages (analysis/views/people.py); Django's admin,
`ensure_admin` and single sign-on call the same functions, inside the transaction that
saves the account. Staff roles: *admin* (Django's is_staff) and *auditor* (the "auditor"
group, which holds the analysis.audit_cases permission and nothing else).
"""

from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import transaction

from analysis import audit, signin, streaming
from analysis.models import Account, AuditEvent, Invitation

Action = AuditEvent.Action
ADMIN, AUDITOR = "admin", "auditor"
STAFF_ROLES = (ADMIN, AUDITOR)
# What makes up a user's "role" on the audit trail: staff, superuser and groups.
ROLE_FIELDS = ("is_staff", "is_superuser")


def role_of(user) -> dict:
    groups = sorted(user.groups.values_list("name", flat=True)) if user.pk else []
    return {**{field: getattr(user, field) for field in ROLE_FIELDS}, "groups": groups}


def staff_roles(user) -> set[str]:
    roles = {ADMIN} if user.is_staff else set()
    if user.pk and user.groups.filter(name=AUDITOR).exists():
        roles.add(AUDITOR)
    return roles


def auditor_group() -> Group:
    group, created = Group.objects.get_or_create(name=AUDITOR)
    if created:
        group.permissions.add(Permission.objects.get(codename="audit_cases"))
    return group


def record_user_change(
    user, *, before: dict | None, was_active: bool | None, request=None, via: str = ""
):
    """One event per kind of change: created, deactivated, reactivated, role changed.

    `before` is `role_of(user)` taken before the change (None for a new account), and
    `was_active` the account's is_active then.
    """
    details = {"username": user.get_username(), **({"via": via} if via else {})}
    if before is None:
        audit.record(
            Action.USER_CREATED, target=user, request=request, details={**details, **role_of(user)}
        )
        return
    if was_active is not None and was_active != user.is_active:
        action = Action.USER_REACTIVATED if user.is_active else Action.USER_DEACTIVATED
        audit.record(action, target=user, request=request, details=details)
    after = role_of(user)
    if after != before:
        audit.record(
            Action.USER_ROLE_CHANGED,
            target=user,
            request=request,
            details={**details, "from": before, "to": after},
        )


def temporary_password() -> str:
    return secrets.token_urlsafe(12)


@transaction.atomic
def invite(*, username: str, email: str, by, request=None, link: bool = True):
    """A new account: returns (user, token) for a link, or (user, password) to hand over."""
    user = get_user_model().objects.create_user(username, email)
    Account.objects.create(user=user, must_change_password=not link)
    record_user_change(user, before=None, was_active=None, request=request)
    secret = _issue_secret(user, by=by, link=link)
    how = "link" if link else "temporary password"
    audit.record(
        Action.USER_INVITED,
        target=user,
        request=request,
        details={"username": username, "how": how},
    )
    return user, secret


def _issue_secret(user, *, by, link: bool) -> str:
    if link:
        user.set_unusable_password()
        user.save(update_fields=["password"])
        return Invitation.issue(user=user, created_by=by)[1]
    password = temporary_password()
    user.set_password(password)
    user.save(update_fields=["password"])
    Account.objects.update_or_create(user=user, defaults={"must_change_password": True})
    return password


@transaction.atomic
def reset_password(user, *, by, request=None, link: bool = False) -> str:
    """A new temporary password (or a link); the old one and every session stop working."""
    secret = _issue_secret(user, by=by, link=link)
    ended = signin.end_sessions(user)
    how = "link" if link else "temporary password"
    audit.record(
        Action.PASSWORD_RESET,
        target=user,
        request=request,
        details={"username": user.get_username(), "how": how, "sessions_ended": ended},
    )
    _close_sockets_on_commit(user)
    return secret


@transaction.atomic
def set_active(user, active: bool, *, request=None) -> None:
    """Deactivating ends the user's sessions and closes their sockets at once."""
    was_active = user.is_active
    user.is_active = active
    user.save(update_fields=["is_active"])
    record_user_change(user, before=role_of(user), was_active=was_active, request=request)
    if not active:
        end_sessions_and_sockets(user)


def end_sessions_and_sockets(user) -> int:
    ended = signin.end_sessions(user)
    _close_sockets_on_commit(user)
    return ended


@transaction.atomic
def set_staff_roles(user, roles: set[str], *, request=None, via: str = "") -> None:
    before = role_of(user)
    user.is_staff = ADMIN in roles
    user.save(update_fields=["is_staff"])
    if AUDITOR in roles:
        user.groups.add(auditor_group())
    else:
        user.groups.remove(*Group.objects.filter(name=AUDITOR))
    record_user_change(user, before=before, was_active=None, request=request, via=via)


def _close_sockets_on_commit(user) -> None:
    user_id = user.pk
    transaction.on_commit(lambda: streaming.close_user_sockets(user_id))


@transaction.atomic
def reset_two_factor(user, *, request=None) -> None:
    """A lost authenticator: its devices go, the user enrols again at next sign-in."""
    from analysis import twofactor

    twofactor.remove_all(user)
    ended = signin.end_sessions(user)
    audit.record(
        Action.TWO_FACTOR_RESET,
        target=user,
        request=request,
        details={"username": user.get_username(), "sessions_ended": ended},
    )
    _close_sockets_on_commit(user)


def sync_roles(user, groups: set[str], mapping: dict[str, str], *, source: str) -> None:
    """Staff roles from a directory's groups: only the roles whose group is configured are
    managed (granted when in the group, removed when not); the others stay as an admin set them."""
    managed = {role: group.lower() for role, group in mapping.items() if group}
    if not managed:
        return
    current = staff_roles(user)
    wanted = {role for role in current if role not in managed}
    wanted |= {role for role, group in managed.items() if group in groups}
    if wanted != current:
        set_staff_roles(user, wanted, via=source)
