"""What base.html shows on every page: the wall, visible.

On a case page and every page under it, each member sees the break-glass grants open on the
case (who, why, until when); on any page, owners see the grants open on their cases.
"""

from __future__ import annotations

from analysis import access
from analysis.models import BreakGlass, Membership


def break_glass(request) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    match = request.resolver_match
    case_id = match.kwargs.get("case_id") if match is not None else None
    context: dict = {"owner_break_glass": _on_my_cases(user)}
    if case_id is not None:
        found = access.case_access(user, case_id)
        if found is not None:
            grants = BreakGlass.active(found.case).select_related("user")
            context["case_break_glass"] = list(grants)
    return context


def _on_my_cases(user) -> list[BreakGlass]:
    owned = Membership.objects.filter(user=user, role=Membership.Role.OWNER).values("case")
    grants = BreakGlass.active().filter(case__in=owned).select_related("user", "case")
    return list(grants[:10])
