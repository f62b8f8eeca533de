"""Legal holds: while one stands, nothing in the case can be purged, deleted or changed."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from analysis import audit
from analysis.models import AuditEvent, Case, LegalHold


class HeldError(Exception):
    """The case is under legal hold: the message says why."""


def standing_holds(case_id) -> list[LegalHold]:
    return list(LegalHold.standing(case_id).select_related("placed_by"))


def hold_message(holds: list[LegalHold]) -> str:
    reasons = "; ".join(
        f"{h.reason}" + (f" (matter {h.matter})" if h.matter else "") for h in holds
    )
    return f"This case is under legal hold: {reasons}. Nothing in it can be changed or deleted."


def refuse_if_held(case: Case) -> None:
    holds = standing_holds(case.pk)
    if holds:
        raise HeldError(hold_message(holds))


def lock_case(case: Case) -> None:
    # Holds, purges and deletion decisions on one case take its row lock first, so a hold
    # placed now is seen by every purge step that comes after it (SQLite: the IMMEDIATE
    # transaction already serializes writers).
    list(Case.objects.select_for_update().filter(pk=case.pk).values_list("pk"))


def place_hold(case: Case, *, user, reason: str, matter: str = "", request=None) -> LegalHold:
    with transaction.atomic():
        lock_case(case)
        hold = LegalHold.objects.create(case=case, reason=reason, matter=matter, placed_by=user)
        audit.record(AuditEvent.Action.LEGAL_HOLD_SET, case=case, target=hold, actor=user,
                     request=request, details={"reason": reason, "matter": matter})  # fmt: skip
    return hold


def lift_hold(hold: LegalHold, *, user, reason: str, request=None) -> bool:
    with transaction.atomic():
        lifted = LegalHold.objects.filter(pk=hold.pk, lifted_at__isnull=True).update(
            lifted_at=timezone.now(), lifted_by=user, lift_reason=reason
        )
        if lifted:
            still = LegalHold.standing(hold.case_id).count()
            audit.record(AuditEvent.Action.LEGAL_HOLD_LIFTED, case=hold.case_id, target=hold,
                         actor=user, request=request,
                         details={"reason": reason, "holds_still_standing": still})  # fmt: skip
    return bool(lifted)
