from __future__ import annotations

import hashlib

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST, require_safe

from analysis import access, audit, pipeline
from analysis.forms import AskForm
from analysis.inference import registry
from analysis.models import Analysis, AuditEvent
from analysis.views.cases import analysis_card, render_case


@login_required
@require_POST
def ask(request: HttpRequest, case_id) -> HttpResponse:
    found = access.get_case_or_404(request.user, case_id, access.Action.ASK)
    form = AskForm(request.POST, case=found.case)
    if form.is_valid():
        # Refused before anything is queued: an image for a model without vision, and so on.
        kinds = {asset.kind for asset in form.cleaned_data["media"]}
        if reason := registry.refusal(kinds):
            form.add_error("media", reason)
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
        analysis.media.set(form.cleaned_data["media"])
        question = form.cleaned_data["question"]
        audit.record(
            AuditEvent.Action.ANALYSIS_ASKED,
            case=found.case,
            target=analysis,
            request=request,
            details={
                # The question itself stays behind the case wall; its hash proves which it was.
                "question_sha256": hashlib.sha256(question.encode()).hexdigest(),
                "chars": len(question),
                "media": [str(asset.id) for asset in form.cleaned_data["media"]],
            },
        )
        # The worker must never see a row that is not committed yet.
        transaction.on_commit(lambda: pipeline.enqueue(analysis))
    return _new_card_reply(request, found.case, analysis)


@login_required
@require_safe
def analysis_detail(request: HttpRequest, case_id, analysis_id) -> HttpResponse:
    found = access.get_case_or_404(request.user, case_id)
    analysis = get_object_or_404(Analysis, pk=analysis_id, case=found.case)
    return render(
        request,
        "analysis/cases/detail.html#analysis-card",
        {"card": analysis_card(analysis), "case": found.case},
    )


@login_required
@require_POST
def reproduce(request: HttpRequest, case_id, analysis_id) -> HttpResponse:
    """Run a finished analysis again as a new one, on its recorded model, media plan and
    sampler; with greedy decoding the answer is the same text (tests/test_reproduce.py)."""
    found = access.get_case_or_404(request.user, case_id, access.Action.ASK)
    original = get_object_or_404(Analysis, pk=analysis_id, case=found.case)
    if not original.record:
        messages.error(request, "This analysis has no reproducibility record to run again.")
        return redirect("case-detail", case_id=found.case.id)
    with transaction.atomic():
        copy = Analysis.objects.create(
            case=found.case,
            created_by=request.user,
            question=original.question,
            response_schema=original.response_schema,
            reproduced_from=original,
        )
        copy.media.set(original.media.all())
        audit.record(
            AuditEvent.Action.ANALYSIS_REPRODUCED,
            case=found.case,
            target=copy,
            request=request,
            details={"original": str(original.id), "model": original.model_name},
        )
        transaction.on_commit(lambda: pipeline.enqueue(copy))
    return _new_card_reply(request, found.case, copy)


def _new_card_reply(request: HttpRequest, case, analysis: Analysis) -> HttpResponse:
    """htmx gets the new answer card to insert; a plain form post goes back to the case."""
    if request.htmx:
        return render(
            request,
            "analysis/cases/detail.html#analysis-card",
            {"card": analysis_card(analysis), "case": case},
        )
    return redirect("case-detail", case_id=case.id)
