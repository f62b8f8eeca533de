"""Batches: one template over many items, one job each, one live summary row, a CSV."""

from __future__ import annotations

import csv

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from analysis import access, audit, pipeline
from analysis.forms import BatchForm
from analysis.inference import registry
from analysis.models import Analysis, AuditEvent, Batch


@login_required
@require_POST
def batch_create(request: HttpRequest, case_id) -> HttpResponse:
    found = access.get_case_or_404(request.user, case_id, access.Action.ASK)
    form = BatchForm(request.POST, case=found.case)
    kinds = {a.kind for a in form.cleaned_data["items"]} if form.is_valid() else set()
    if reason := registry.refusal(kinds):
        form.add_error("items", reason)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect("case-detail", case_id=found.case.id)
    template, items = form.cleaned_data["template"], list(form.cleaned_data["items"])
    with transaction.atomic():
        batch = Batch.objects.create(
            case=found.case, template=template, name=template.name, created_by=request.user
        )
        jobs = [_job(found.case, request.user, batch, template, item) for item in items]
        audit.record(
            AuditEvent.Action.BATCH_STARTED,
            case=found.case,
            target=batch,
            request=request,
            details={"template": template.name, "items": [str(a.id) for a in items]},
        )
        transaction.on_commit(lambda: [pipeline.enqueue(job) for job in jobs])
    messages.success(request, f"{len(jobs)} questions queued: “{template.name}”.")
    return redirect("case-detail", case_id=found.case.id)


def _job(case, user, batch: Batch, template, item) -> Analysis:
    analysis = Analysis.objects.create(
        case=case,
        created_by=user,
        question=template.fill(case, item),
        template=template,
        batch=batch,
        sampler=template.sampler,
        response_schema=template.response_schema,
    )
    analysis.media.set([item])
    return analysis


@login_required
@require_GET
def batch_row(request: HttpRequest, case_id, batch_id) -> HttpResponse:
    found = access.get_case_or_404(request.user, case_id)
    batch = get_object_or_404(Batch, pk=batch_id, case=found.case)
    context = {"batch": batch, "case": found.case}
    return render(request, "analysis/analyses/batch_row.html", context)


@login_required
@require_GET
def batch_csv(request: HttpRequest, case_id, batch_id) -> HttpResponse:
    """One row per item: what was asked, the status and the answer (or the reason)."""
    found = access.get_case_or_404(request.user, case_id)
    batch = get_object_or_404(Batch, pk=batch_id, case=found.case)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="batch-{batch.id}.csv"'
    writer = csv.writer(response)
    writer.writerow(["item", "kind", "status", "answer", "error", "tokens", "analysis", "asked_at"])
    rows = batch.analyses.prefetch_related("media").order_by("created_at", "pk")
    for analysis in rows:
        item = next(iter(analysis.media.all()), None)
        writer.writerow([
            _cell(item.filename if item else ""), item.kind if item else "", analysis.status,
            _cell(analysis.answer), _cell(analysis.error), analysis.completion_tokens or "",
            analysis.id, analysis.created_at.isoformat(),
        ])  # fmt: skip
    with transaction.atomic():
        audit.record(
            AuditEvent.Action.ANALYSIS_VIEWED,
            case=found.case,
            target=batch,
            request=request,
            details={"export": "batch.csv", "rows": rows.count()},
        )
    return response


def _cell(text: str) -> str:
    """A spreadsheet runs a cell that starts with = + - @ as a formula: not from our CSV."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
