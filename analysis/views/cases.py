from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from analysis import access
from analysis.forms import AskForm, CaseForm
from analysis.models import Case


@login_required
def case_list(request: HttpRequest) -> HttpResponse:
    cases = access.visible_cases(request.user).exclude(status=Case.Status.ARCHIVED)
    return render(request, "analysis/cases/list.html", {"cases": cases[:200]})


@login_required
def case_create(request: HttpRequest) -> HttpResponse:
    form = CaseForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        case = Case.create_with_owner(user=request.user, **form.cleaned_data)
        return redirect("case-detail", case_id=case.id)
    return render(request, "analysis/cases/form.html", {"form": form})


@login_required
def case_detail(request: HttpRequest, case_id) -> HttpResponse:
    found = access.get_case_or_404(request.user, case_id)
    return render_case(request, found, AskForm())


def render_case(request: HttpRequest, found: access.CaseAccess, ask_form, status=200):
    analyses = found.case.analyses.select_related("created_by")[:50]
    return render(
        request,
        "analysis/cases/detail.html",
        {
            "case": found.case,
            "role": found.role,
            "can_ask": found.can(access.Action.ASK),
            "ask_form": ask_form,
            "cards": [analysis_card(a) for a in analyses],
        },
        status=status,
    )


def analysis_card(analysis) -> dict:
    """What one answer card shows: the saved answer, or what has streamed so far."""
    if analysis.is_finished:
        return {"analysis": analysis, "text": analysis.answer, "seq": 0}
    text, seq = analysis.streamed_text()
    return {"analysis": analysis, "text": text, "seq": seq}
