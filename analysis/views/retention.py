"""Retention pages: a case's schedule, override, holds and early-deletion requests; the staff
policy page with the preview of the next run; purge certificates as JSON downloads."""

from __future__ import annotations

import logging
import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from analysis import access, retention, retention_purge, retention_requests, tasks
from analysis.forms import DeletionRequestForm, HoldForm, LiftHoldForm, RetentionPolicyForm
from analysis.models import Case, DeletionRequest, LegalHold, PurgeRun, RetentionPolicy

Action = access.Action
log = logging.getLogger(__name__)


@login_required
@require_safe
def case_retention(request: HttpRequest, case_id) -> HttpResponse:
    found = access.get_case_or_404(request.user, case_id)
    return render_case_retention(request, found)


def render_case_retention(request, found: access.CaseAccess, **forms) -> HttpResponse:
    case = found.case
    own = RetentionPolicy.objects.filter(case=case).first()
    context = {
        "case": case,
        "access": found,
        "schedule": retention.schedule(case),
        "overrides_allowed": retention.overrides_allowed(),
        "own_policy": own,
        "policy_form": forms.get("policy_form") or RetentionPolicyForm(instance=own),
        "hold_form": forms.get("hold_form") or HoldForm(),
        "request_form": forms.get("request_form") or DeletionRequestForm(case=case),
        "holds": case.legal_holds.select_related("placed_by", "lifted_by"),
        "requests": case.deletion_requests.select_related("requested_by", "decided_by", "asset"),
        "can_manage": found.can(Action.MANAGE),
        "can_hold": found.can(Action.HOLD),
        "can_request": found.can(Action.REQUEST_DELETION),
        "can_audit": found.can(Action.AUDIT),
        "runs": PurgeRun.objects.filter(records__case=case).distinct()[:20],
    }
    return render(request, "analysis/retention/case.html", context)


@login_required
@require_POST
def case_policy(request: HttpRequest, case_id) -> HttpResponse:
    found = access.get_case_or_404(request.user, case_id, Action.MANAGE)
    if not retention.overrides_allowed():
        raise PermissionDenied("The global retention policy does not allow case overrides.")
    if request.POST.get("inherit"):
        retention.drop_override(found.case, user=request.user, request=request)
        messages.success(request, "This case follows the global policy again.")
        return redirect("case-retention", case_id=found.case.id)
    own = RetentionPolicy.objects.filter(case=found.case).first()
    form = RetentionPolicyForm(request.POST, instance=own)
    if not form.is_valid():
        return render_case_retention(request, found, policy_form=form)
    retention.save_policy(case=found.case, values=form.cleaned_data, user=request.user,
                          request=request)  # fmt: skip
    messages.success(request, "This case's retention policy is saved.")
    return redirect("case-retention", case_id=found.case.id)


def _case_for_hold(request: HttpRequest, case_id) -> tuple[Case, access.CaseAccess | None]:
    """Owners place and lift holds in their case; staff admins in any case, from outside."""
    if access.is_staff(request.user):
        return access.get_case_for_staff_or_404(request.user, case_id), None
    found = access.get_case_or_404(request.user, case_id, Action.HOLD)
    return found.case, found


def _back(request: HttpRequest, found, case: Case):
    if found is None and not access.case_access(request.user, case.pk):
        return redirect("staff-retention")
    return redirect("case-retention", case_id=case.id)


@login_required
@require_POST
def hold_place(request: HttpRequest, case_id) -> HttpResponse:
    case, found = _case_for_hold(request, case_id)
    form = HoldForm(request.POST)
    if not form.is_valid():
        messages.error(request, "A legal hold needs a reason.")
        return _back(request, found, case)
    retention.place_hold(case, user=request.user, request=request, **form.cleaned_data)
    messages.warning(request, "Legal hold placed: nothing in this case can change or go now.")
    return _back(request, found, case)


@login_required
@require_POST
def hold_lift(request: HttpRequest, case_id, hold_id) -> HttpResponse:
    case, found = _case_for_hold(request, case_id)
    hold = get_object_or_404(LegalHold, pk=hold_id, case=case)
    form = LiftHoldForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Lifting a legal hold needs a reason.")
    elif retention.lift_hold(hold, user=request.user, reason=form.cleaned_data["reason"],
                             request=request):  # fmt: skip
        left = LegalHold.standing(case.pk).count()
        messages.success(request, f"Hold lifted; {left} still standing." if left else
                         "Hold lifted; the case is free again.")  # fmt: skip
    else:
        messages.info(request, "That hold was already lifted.")
    return _back(request, found, case)


@login_required
@require_POST
def deletion_request(request: HttpRequest, case_id) -> HttpResponse:
    found = access.get_case_or_404(request.user, case_id, Action.REQUEST_DELETION)
    form = DeletionRequestForm(request.POST, case=found.case)
    if not form.is_valid():
        return render_case_retention(request, found, request_form=form)
    try:
        retention_requests.request_deletion(found.case, user=request.user, request=request,
                                   **form.cleaned_data)  # fmt: skip
    except (retention_requests.Refused, retention.HeldError) as refused:
        messages.error(request, str(refused))
    else:
        messages.success(request, "Requested: a different admin must approve it.")
    return redirect("case-retention", case_id=found.case.id)


@login_required
@require_safe
def case_certificate(request: HttpRequest, case_id) -> HttpResponse:
    """The purge certificate of a case: every part purged, or one run's (`?run=`), whose
    SHA-256 the `retention.purged` event of that run on the case's chain names."""
    case = access.get_case_to_audit_or_404(request.user, case_id)
    run_id = request.GET.get("run") or None
    if run_id is not None:
        try:
            run_id = PurgeRun.objects.get(pk=uuid.UUID(run_id)).pk
        except (ValueError, PurgeRun.DoesNotExist):
            raise Http404("No such purge run.") from None
    header, records = retention_purge.case_certificate(run_id, case.pk)
    suffix = f"-{run_id}" if run_id else ""
    return _json_download(header, records, f"purge-certificate-{case.pk}{suffix}.json")


def _json_download(header: dict, records, filename: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(
        retention_purge.certificate_chunks(records, header), content_type="application/json"
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["X-Content-Type-Options"] = "nosniff"
    return response


# --- staff ---------------------------------------------------------------------------------


def _staff_only(request: HttpRequest) -> None:
    if not access.is_staff(request.user):
        raise Http404("No such page.")


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def staff_retention(request: HttpRequest) -> HttpResponse:
    """The global policy, the preview of the next run, held cases, requests, past runs."""
    _staff_only(request)
    default = retention.global_policy()
    form = RetentionPolicyForm(request.POST or None, instance=default, is_global=True)
    if request.method == "POST" and form.is_valid():
        retention.save_policy(case=None, values=form.cleaned_data, user=request.user,
                              request=request)  # fmt: skip
        messages.success(request, "Global retention policy saved.")
        return redirect("staff-retention")
    preview = list(_bounded(retention.preview(), 200))
    context = {
        "form": form,
        "preview": preview,
        "preview_bytes": sum(row.total_bytes for row in preview),
        "held": retention.held_cases().order_by("title")[:200],
        "pending": DeletionRequest.objects.filter(
            state=DeletionRequest.State.PENDING
        ).select_related("case", "asset", "requested_by"),
        "runs": PurgeRun.objects.all()[:20],
        "hold_form": HoldForm(),
    }
    return render(request, "analysis/retention/staff.html", context)


def _bounded(rows, limit: int):
    for n, row in enumerate(rows):
        if n >= limit:
            return
        yield row


@login_required
@require_safe
def run_certificate(request: HttpRequest, run_id) -> HttpResponse:
    if not (access.is_staff(request.user) or access.is_auditor(request.user)):
        raise Http404("No such page.")
    run = get_object_or_404(PurgeRun, pk=run_id)
    header, records = retention_purge.run_certificate(run)
    return _json_download(header, records, f"purge-certificate-run-{run.pk}.json")


@login_required
@require_POST
def decide_request(request: HttpRequest, request_id) -> HttpResponse:
    _staff_only(request)
    row = get_object_or_404(DeletionRequest.objects.select_related("case"), pk=request_id)
    approve = request.POST.get("decision") == "approve"
    try:
        retention_requests.decide(row, admin=request.user, approve=approve,
                         note=request.POST.get("note", "")[:2000], request=request)  # fmt: skip
    except (retention_requests.Refused, retention.HeldError) as refused:
        messages.error(request, str(refused))
        return redirect("staff-retention")
    if approve:
        messages.success(request, "Approved: the deletion runs now." if _start_purge(row.case_id)
                         else "Approved: the next daily purge deletes it.")  # fmt: skip
    else:
        messages.info(request, "Refused.")
    return redirect("staff-retention")


def _start_purge(case_id) -> bool:
    try:
        tasks.purge_case.delay(str(case_id))
    except Exception:  # the broker is down: the daily run picks the approved request up
        log.warning("could not queue the early deletion of %s", case_id, exc_info=True)
        return False
    return True
