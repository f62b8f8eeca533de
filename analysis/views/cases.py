from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Prefetch, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from analysis import access, audit, retention, search
from analysis.forms import AskForm, BatchForm, CaseForm
from analysis.inference import registry
from analysis.models import AuditEvent, Case, ReviewNote
from analysis.views.cards import analysis_card, threads
from analysis.views.media_pages import case_media_context

__all__ = ["analysis_card", "ask_form_context", "render_case"]

STATUS_EVENTS = {
    "close": AuditEvent.Action.CASE_CLOSED,
    "archive": AuditEvent.Action.CASE_ARCHIVED,
    "reopen": AuditEvent.Action.CASE_REOPENED,
}
STATUS_FILTERS = {
    "": Q(status__in=[Case.Status.OPEN, Case.Status.CLOSED]),  # archived cases hide by default
    "all": Q(),
    **{status: Q(status=status) for status in Case.Status.values},
}


@login_required
@require_safe
def case_list(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status", "")
    query = request.GET.get("q", "").strip()
    cases = access.visible_cases(request.user).filter(STATUS_FILTERS.get(status, Q()))
    if query:
        cases = cases.filter(Q(title__icontains=query) | Q(reference__icontains=query))
    page = Paginator(cases.order_by("-updated_at", "id"), settings.CASES_PER_PAGE).get_page(
        request.GET.get("page")
    )
    context = {"page": page, "q": query, "status": status, "statuses": Case.Status.choices}
    return render(request, "analysis/cases/list.html", context)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def case_create(request: HttpRequest) -> HttpResponse:
    form = CaseForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            case = Case.create_with_owner(user=request.user, **form.cleaned_data)
            audit.record(
                AuditEvent.Action.CASE_CREATED,
                case=case,
                target=case,
                request=request,
                details={"title": case.title, "reference": case.reference},
            )
            search.index_case(case)
        return redirect("case-detail", case_id=case.id)
    return render(request, "analysis/cases/form.html", {"form": form})


@login_required
@require_safe
def case_detail(request: HttpRequest, case_id) -> HttpResponse:
    found = access.get_case_or_404(request.user, case_id)
    return render_case(request, found, AskForm(case=found.case))


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def case_edit(request: HttpRequest, case_id) -> HttpResponse:
    found = access.get_case_or_404(request.user, case_id, access.Action.MANAGE)
    form = CaseForm(request.POST or None, instance=found.case)
    if request.method == "POST" and form.is_valid():
        changed = {
            name: [str(form.initial.get(name) or ""), str(form.cleaned_data[name] or "")]
            for name in form.changed_data
        }
        with transaction.atomic():
            form.save()
            audit.record(
                AuditEvent.Action.CASE_EDITED,
                case=found.case,
                target=found.case,
                request=request,
                details={"changed": changed},
            )
            search.index_case(found.case)
        messages.success(request, "Case updated.")
        return redirect("case-detail", case_id=found.case.id)
    return render(request, "analysis/cases/form.html", {"form": form, "case": found.case})


@login_required
@require_POST
def case_set_status(request: HttpRequest, case_id) -> HttpResponse:
    found = access.get_case_or_404(request.user, case_id, access.Action.SET_STATUS)
    verb = request.POST.get("action", "")
    if not found.case.can_transition(verb):
        messages.error(request, f"A {found.case.status} case cannot do “{verb}”.")
    else:
        before = found.case.status
        with transaction.atomic():
            found.case.transition(verb)
            audit.record(
                STATUS_EVENTS[verb],
                case=found.case,
                target=found.case,
                request=request,
                details={"from": before, "to": found.case.status},
            )
        messages.success(request, f"Case {found.case.get_status_display().lower()}.")
    return redirect("case-detail", case_id=found.case.id)


ANSWERS_PER_PAGE = 20


def render_case(request: HttpRequest, found: access.CaseAccess, ask_form, status=200):
    case = found.case
    analyses = case.analyses.select_related(
        "created_by", "mark__updated_by", "template", "follows"
    ).prefetch_related(
        Prefetch("notes", queryset=ReviewNote.objects.select_related("author")), "media"
    )
    answers = Paginator(analyses, ANSWERS_PER_PAGE).get_page(request.GET.get("answers"))
    media = case_media_context(found, request.GET.get("media"))
    selected = {str(pk) for pk in ask_form.data.getlist("media")} if ask_form.is_bound else set()
    can_ask = found.can(access.Action.ASK)
    context = {
        "case": case,
        "access": found,
        **ask_form_context(case, ask_form, can_ask),
        "can_comment": found.can(access.Action.COMMENT),
        "threads": threads(list(answers)),
        "batches": case.batches.select_related("created_by")[:10],
        "batch_form": BatchForm(case=case) if can_ask else None,
        "can_manage": found.can(access.Action.MANAGE),
        "can_set_status": found.can(access.Action.SET_STATUS),
        "transitions": [verb for verb in Case.TRANSITIONS if case.can_transition(verb)],
        "members": case.memberships.select_related("user").order_by("role", "user__username"),
        "ask_selected": selected,
        "answers_page": answers,
        "can_audit": found.can(access.Action.AUDIT) or access.is_auditor(request.user),
        # Who did what lately: the case's own audit chain, newest first (no details shown).
        "activity": case.audit_events.select_related("actor").order_by("-seq")[:10],
        "schedule": retention.schedule(case),
        **media,
    }
    return render(request, "analysis/cases/detail.html", context, status=status)


def ask_form_context(case: Case, form, can_ask: bool = True) -> dict:
    """The ask form and what it says before anyone submits (what the model cannot take)."""
    return {"case": case, "ask_form": form, "can_ask": can_ask, "media_note": registry.media_note()}
