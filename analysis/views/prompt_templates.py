"""Prompt templates: staff manage the installation's, a case's owners manage the case's."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from analysis import access, audit
from analysis.forms import TemplateForm
from analysis.models import AuditEvent, Case, PromptTemplate
from analysis.models.templates import PLACEHOLDERS


def _scope(request: HttpRequest, case_id, manage: bool) -> tuple[Case | None, bool]:
    """The case (None: staff-wide) and whether the user may change its templates."""
    if case_id is None:
        if not access.is_staff(request.user):
            raise Http404("No such page.")
        return None, True
    found = access.get_case_or_404(request.user, case_id)
    may = found.can(access.Action.MANAGE)
    if manage and not may:
        access.get_case_or_404(request.user, case_id, access.Action.MANAGE)  # 403
    return found.case, may


def _back(case: Case | None) -> HttpResponse:
    return redirect("case-templates", case_id=case.id) if case else redirect("staff-templates")


@login_required
@require_http_methods(["GET", "POST"])
def template_list(request: HttpRequest, case_id=None) -> HttpResponse:
    case, may_edit = _scope(request, case_id, manage=request.method == "POST")
    form = TemplateForm(request.POST or None, case=case)
    if request.method == "POST" and form.is_valid():
        _save(request, form, case)
        messages.success(request, f"Template “{form.instance.name}” saved.")
        return _back(case)
    shared = PromptTemplate.objects.filter(case__isnull=True)
    own = PromptTemplate.objects.filter(case=case) if case else shared
    context = {"case": case, "form": form, "may_edit": may_edit, "own": own,
               "shared": shared if case else [], "placeholders": PLACEHOLDERS}  # fmt: skip
    return render(
        request, "analysis/templates/list.html", context, status=422 if form.errors else 200
    )


@login_required
@require_http_methods(["GET", "POST"])
def template_edit(request: HttpRequest, template_id: int, case_id=None) -> HttpResponse:
    case, _ = _scope(request, case_id, manage=True)
    template = get_object_or_404(PromptTemplate, pk=template_id, case=case)
    form = TemplateForm(request.POST or None, instance=template, case=case)
    if request.method == "POST" and form.is_valid():
        _save(request, form, case)
        messages.success(request, f"Template “{template.name}” saved.")
        return _back(case)
    context = {"case": case, "form": form, "template": template, "placeholders": PLACEHOLDERS}
    return render(
        request, "analysis/templates/edit.html", context, status=422 if form.errors else 200
    )


@login_required
@require_POST
def template_delete(request: HttpRequest, template_id: int, case_id=None) -> HttpResponse:
    case, _ = _scope(request, case_id, manage=True)
    template = get_object_or_404(PromptTemplate, pk=template_id, case=case)
    with transaction.atomic():
        audit.record(
            AuditEvent.Action.TEMPLATE_DELETED,
            case=case,
            target=template,
            request=request,
            details={"name": template.name},
        )
        template.delete()  # questions asked with it keep their text; the link is cleared
    messages.success(request, f"Template “{template.name}” deleted.")
    return _back(case)


def _save(request: HttpRequest, form: TemplateForm, case: Case | None) -> None:
    with transaction.atomic():
        template = form.save(commit=False)
        template.case = case
        template.created_by = template.created_by or request.user
        template.save()
        audit.record(
            AuditEvent.Action.TEMPLATE_SAVED,
            case=case,
            target=template,
            request=request,
            details={"name": template.name, "changed": form.changed_data},
        )
