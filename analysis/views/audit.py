"""Audit pages: a case's chain (its owners, staff auditors) and the global chain (auditors).

Filter by actor, action and dates; export what is shown as CSV or JSON (each export is
itself an audit event); verify the chain, seals included, on demand.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_GET, require_POST

from analysis import access, audit, audit_display, audit_export
from analysis.audit_hash import iso_utc
from analysis.models import AuditEvent, Case

PER_PAGE = 50
Action = AuditEvent.Action
TEMPLATE = "analysis/audit/events.html"


class AuditFilterForm(forms.Form):
    actor = forms.CharField(required=False, max_length=150, label="Actor (username)")
    action = forms.ChoiceField(required=False, choices=[("", "Any action"), *Action.choices])
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def apply(self, events: QuerySet[AuditEvent]) -> QuerySet[AuditEvent]:
        """Filter by the fields that are valid; an invalid one is shown, not applied."""
        self.is_valid()
        data = getattr(self, "cleaned_data", {})
        if data.get("actor"):
            events = events.filter(actor__username=data["actor"])
        if data.get("action"):
            events = events.filter(action=data["action"])
        # Whole days in the site's time zone, "until" included.
        if data.get("since"):
            events = events.filter(created_at__gte=_day_start(data["since"]))
        if data.get("until"):
            events = events.filter(created_at__lt=_day_start(data["until"] + timedelta(days=1)))
        return events

    def used(self) -> dict[str, str]:
        """The filters applied, for the export's own record."""
        self.is_valid()
        return {k: str(v) for k, v in getattr(self, "cleaned_data", {}).items() if v}


def _day_start(day) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


# --- a case's chain ----------------------------------------------------------------------------


@login_required
@require_GET
def case_audit(request: HttpRequest, case_id) -> HttpResponse:
    case = access.get_case_to_audit_or_404(request.user, case_id, access.Action.READ_AUDIT)
    return _page(request, case)


@login_required
@require_POST
def case_audit_verify(request: HttpRequest, case_id) -> HttpResponse:
    case = access.get_case_to_audit_or_404(request.user, case_id)
    return _verified(request, case)


@login_required
@require_GET
def case_audit_export(request: HttpRequest, case_id, fmt: str) -> HttpResponse:
    case = access.get_case_to_audit_or_404(request.user, case_id)
    return _export(request, case, fmt)


# --- the global chain (sign-ins, staff actions): staff auditors only ---------------------------


def _auditor_or_404(request: HttpRequest) -> None:
    if not access.is_auditor(request.user):
        raise Http404("No such page.")


@login_required
@require_GET
def global_audit(request: HttpRequest) -> HttpResponse:
    _auditor_or_404(request)
    return _page(request, None)


@login_required
@require_POST
def global_audit_verify(request: HttpRequest) -> HttpResponse:
    _auditor_or_404(request)
    return _verified(request, None)


@login_required
@require_GET
def global_audit_export(request: HttpRequest, fmt: str) -> HttpResponse:
    _auditor_or_404(request)
    return _export(request, None, fmt)


# --- shared by both ----------------------------------------------------------------------------


def _urls(case: Case | None) -> dict[str, str]:
    if case is None:
        return {
            "page_url": reverse("audit-global"),
            "verify_url": reverse("audit-global-verify"),
            "csv_url": reverse("audit-global-csv"),
            "json_url": reverse("audit-global-json"),
        }
    return {
        "page_url": reverse("case-audit", args=[case.id]),
        "verify_url": reverse("case-audit-verify", args=[case.id]),
        "csv_url": reverse("case-audit-csv", args=[case.id]),
        "json_url": reverse("case-audit-json", args=[case.id]),
    }


def _page(request: HttpRequest, case: Case | None, result=None) -> HttpResponse:
    form = AuditFilterForm(request.GET)
    events = form.apply(AuditEvent.objects.filter(case=case)).select_related("actor")
    page = Paginator(events.order_by("-seq"), PER_PAGE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "case": case,
        "chain": AuditEvent.chain_key_for(case.id if case else None),
        "form": form,
        "page": page,
        "rows": audit_display.rows(list(page)),
        "query": query.urlencode(),
        "result": result,
        # Reviewers and viewers read their case's trail; exporting and verifying stay with
        # its owners and the auditors.
        "may_export": case is None or access.may_audit(request.user, case),
        **_urls(case),
    }
    template = TEMPLATE
    if request.htmx and request.htmx.target == "audit-events":
        template += "#audit-events"
    return render(request, template, context)


def _verified(request: HttpRequest, case: Case | None) -> HttpResponse:
    result = audit.verify(case)
    if request.htmx:
        return render(request, TEMPLATE + "#verify-result", {"result": result})
    return _page(request, case, result)


def _export(request: HttpRequest, case: Case | None, fmt: str) -> HttpResponse:
    form = AuditFilterForm(request.GET)
    key = AuditEvent.chain_key_for(case.id if case else None)
    # Recorded first, so a whole-chain export contains its own export event.
    exported = audit.record(
        Action.AUDIT_EXPORTED,
        case=case,
        target=("audit_chain", key),
        request=request,
        details={"format": fmt, "filters": form.used()},
    )
    events = form.apply(AuditEvent.objects.filter(case=case)).select_related("actor")
    events = events.order_by("seq").iterator(chunk_size=2000)
    if fmt == "csv":
        body, content_type = audit_export.to_csv(events), "text/csv; charset=utf-8"
    else:
        header = {
            "chain": key,
            "case": {"id": str(case.id), "title": case.title, "reference": case.reference}
            if case
            else None,
            "exported_at": iso_utc(exported.created_at),
            "exported_by": request.user.get_username(),
            "export_event": {"seq": exported.seq, "hash": exported.hash},
            "filters": form.used(),
        }
        body = audit_export.to_json(events, header=header)
        content_type = "application/json"
    response = HttpResponse(body, content_type=content_type)
    stamp = exported.created_at.strftime("%Y%m%dT%H%M%SZ")
    name = f"audit-{key.replace(':', '-')}-{stamp}.{fmt}"
    response["Content-Disposition"] = content_disposition_header(as_attachment=True, filename=name)
    return response
