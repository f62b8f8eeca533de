"""Early deletion under dual control: an owner asks, a different admin decides.

Deleting a whole case before its policy would, or an item of a closed case, goes through
here; both steps are audit events, and nothing under a legal hold can be asked or approved.
An approved request is purged by analysis/retention_purge.py like anything due.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from analysis import audit
from analysis.models import AuditEvent, Case, DeletionRequest, MediaAsset
from analysis.retention import lock_case, refuse_if_held


class Refused(Exception):
    """A request or decision that may not be made: the message says why."""


def request_deletion(case: Case, *, user, reason: str, asset=None, request=None):
    """An owner asks to delete the whole case, or an item of a closed case, before its time."""
    with transaction.atomic():
        lock_case(case)
        refuse_if_held(case)
        if case.status == Case.Status.PURGED:
            raise Refused("This case is already purged.")
        if asset is not None and case.is_writable:
            raise Refused("In an open case, owners delete items themselves.")
        if asset is not None and (asset.case_id != case.pk or asset.status in MediaAsset.GONE):
            raise Refused("That item is not in this case any more.")
        row = DeletionRequest.objects.create(
            case=case, asset=asset, reason=reason, requested_by=user
        )
        what = {"asset": str(asset.pk), "sha256": asset.sha256} if asset else {"asset": None}
        audit.record(AuditEvent.Action.DELETION_REQUESTED, case=case, target=row, actor=user,
                     request=request, details={"reason": reason, **what})  # fmt: skip
    return row


def decide(row: DeletionRequest, *, admin, approve: bool, note: str = "", request=None) -> None:
    """A staff admin who did not ask approves or refuses; approved, the next purge (started
    at once by the view) deletes it."""
    if not (admin.is_active and admin.is_staff):
        raise Refused("Only an admin may decide.")
    if admin.pk == row.requested_by_id:
        raise Refused("A different admin must decide: nobody approves their own request.")
    with transaction.atomic():
        lock_case(row.case)
        if approve:
            refuse_if_held(row.case)
        state = DeletionRequest.State.APPROVED if approve else DeletionRequest.State.REFUSED
        decided = DeletionRequest.objects.filter(
            pk=row.pk, state=DeletionRequest.State.PENDING
        ).update(state=state, decided_by=admin, decided_at=timezone.now(), decision_note=note)
        if not decided:
            raise Refused("This request was already decided.")
        action = (AuditEvent.Action.DELETION_APPROVED if approve
                  else AuditEvent.Action.DELETION_REFUSED)  # fmt: skip
        details = {"note": note, "requested_by": row.requested_by.get_username()}
        audit.record(action, case=row.case, target=row, actor=admin, request=request,
                     details=details)  # fmt: skip
