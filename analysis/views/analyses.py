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
from analysis.views.cases import analysis_card, ask_form_context, render_case
from analysis.views.media_pages import case_media_context


@login_required
@require_POST
def ask(request: HttpRequest, case_id) -> HttpResponse:
    found = access.get_case_or_404(request.user, case_id, access.Action.ASK)
    form = AskForm(request.POST, case=found.case)
    media = []
    if form.is_valid():
        media = form.thread_media()
        # Refused before anything is queued: an image for a model without vision, and so on.
        if reason := registry.refusal({asset.kind for asset in media}):
            form.add_error("media", reason)
    if not form.is_valid():
        if request.htmx:
            return render(
                request,
                "analysis/cases/detail.html#ask-form",
                _refused_form_context(found, form),
                status=422,
            )
        return render_case(request, found, form, status=422)
    template = form.cleaned_data["template"]
    question = form.cleaned_data["question"]
    with transaction.atomic():
        analysis = Analysis.objects.create(
            case=found.case,
            created_by=request.user,
            question=question,
            follows=form.cleaned_data["follows"],
            template=template,
            sampler=template.sampler if template else {},
            response_schema=template.response_schema if template else None,
        )
        analysis.media.set(media)
        audit.record(
            AuditEvent.Action.ANALYSIS_ASKED,
            case=found.case,
            target=analysis,
            request=request,
            details={
                # The question itself stays behind the case wall; its hash proves which it was.
                "question_sha256": hashlib.sha256(question.encode()).hexdigest(),
                "chars": len(question),
                "media": [str(asset.id) for asset in media],
                "template": template.name if template else None,
                "follows": str(analysis.follows_id) if analysis.follows_id else None,
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
        {"card": analysis_card(analysis), "case": found.case, "can_ask": _can_ask(found)},
    )


def _refused_form_context(found: access.CaseAccess, form) -> dict:
    """The form again with its errors, the items it offered and which were ticked."""
    media = case_media_context(found)
    return ask_form_context(found.case, form) | {
        "ask_choices": media["ask_choices"],
        "media_page": media["media_page"],
        "ask_selected": {str(pk) for pk in form.data.getlist("media")},
    }


def _can_ask(found: access.CaseAccess) -> bool:
    return found.can(access.Action.ASK)


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
        copy = original.ask_again(request.user, reproduced_from=original)
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
            {"card": analysis_card(analysis), "case": case, "can_ask": True},
        )
    return redirect("case-detail", case_id=case.id)
