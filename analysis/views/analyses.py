from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from analysis import access, pipeline
from analysis.forms import AskForm
from analysis.models import Analysis
from analysis.views.cases import analysis_card, render_case


@login_required
@require_POST
def ask(request: HttpRequest, case_id) -> HttpResponse:
    found = access.get_case_or_404(request.user, case_id, access.Action.ASK)
    form = AskForm(request.POST)
    if not form.is_valid():
        if request.htmx:
            return render(
                request,
                "analysis/cases/detail.html#ask-form",
                {"case": found.case, "ask_form": form, "can_ask": True},
                status=422,
            )
        return render_case(request, found, form, status=422)
    with transaction.atomic():
        analysis = Analysis.objects.create(
            case=found.case, created_by=request.user, question=form.cleaned_data["question"]
        )
        # The worker must never see a row that is not committed yet.
        transaction.on_commit(lambda: pipeline.enqueue(analysis))
    if request.htmx:
        return render(
            request,
            "analysis/cases/detail.html#analysis-card",
            {"card": analysis_card(analysis), "case": found.case},
        )
    return redirect("case-detail", case_id=found.case.id)


@login_required
def analysis_detail(request: HttpRequest, case_id, analysis_id) -> HttpResponse:
    found = access.get_case_or_404(request.user, case_id)
    analysis = get_object_or_404(Analysis, pk=analysis_id, case=found.case)
    return render(
        request,
        "analysis/cases/detail.html#analysis-card",
        {"card": analysis_card(analysis), "case": found.case},
    )
