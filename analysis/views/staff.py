"""Staff pages: case metadata across the organisation, and break-glass access."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Count, IntegerField, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_safe

from analysis import access, audit
from analysis.forms import BreakGlassForm
from analysis.models import Analysis, AuditEvent, BreakGlass, MediaAsset, Membership


@login_required
@require_safe
def staff_case_list(request: HttpRequest) -> HttpResponse:
    """Metadata only — title, reference, status, members, sizes — never media or answers."""
    if not access.is_staff(request.user):
        raise Http404("No such page.")
    query = request.GET.get("q", "").strip()
    cases = access.staff_cases(request.user).annotate(
        n_members=_count(Membership), n_analyses=_count(Analysis), n_media=_count(MediaAsset),
        media_bytes=_media_bytes(),
    )  # fmt: skip
    if query:
        cases = cases.filter(Q(title__icontains=query) | Q(reference__icontains=query))
    page = Paginator(cases.order_by("-updated_at", "id"), 50).get_page(request.GET.get("page"))
    owners = Membership.objects.filter(case__in=list(page.object_list), role=Membership.Role.OWNER)
    owners_by_case: dict = {}
    for member in owners.select_related("user"):
        owners_by_case.setdefault(member.case_id, []).append(member.user.get_username())
    rows = [(case, owners_by_case.get(case.id, [])) for case in page.object_list]
    return render(request, "analysis/staff/cases.html", {"page": page, "rows": rows, "q": query})


def _per_case(model, aggregate):
    # One correlated subquery per figure: joins of several to-many relations would multiply.
    rows = model.objects.filter(case=OuterRef("pk"))
    if model is MediaAsset:
        rows = rows.filter(deleted_at__isnull=True)
    value = rows.order_by().values("case").annotate(v=aggregate).values("v")
    return Coalesce(Subquery(value, output_field=IntegerField()), 0)


def _count(model):
    return _per_case(model, Count("pk"))


def _media_bytes():
    return _per_case(MediaAsset, Sum("size"))


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def break_glass(request: HttpRequest, case_id) -> HttpResponse:
    case = access.get_case_for_staff_or_404(request.user, case_id)
    form = BreakGlassForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            grant = BreakGlass.open(
                case=case, user=request.user, reason=form.cleaned_data["reason"]
            )
            audit.record(
                AuditEvent.Action.BREAK_GLASS_OPENED,
                case=case,
                target=grant,
                request=request,
                details={"reason": grant.reason, "expires_at": grant.expires_at.isoformat()},
            )
        messages.warning(
            request,
            f"Break-glass access opened until {grant.expires_at:%H:%M} UTC. It is recorded.",
        )
        return redirect("case-detail", case_id=case.id)
    grants = BreakGlass.objects.filter(case=case).select_related("user")[:20]
    return render(
        request, "analysis/staff/break_glass.html", {"case": case, "form": form, "grants": grants}
    )
