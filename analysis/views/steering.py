"""Steering questions: cancel a queued or running one, retry a failed one, see the queue."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from analysis import access, audit, pipeline, queue, streaming
from analysis.models import Analysis, AuditEvent, LegalHold
from analysis.views.cards import analysis_card

LIVE = (Analysis.Status.QUEUED, Analysis.Status.RUNNING)


NEWEST = 20  # questions a reconnecting page checks it shows (more than an outage asks)


@login_required
@require_POST
def cancel(request: HttpRequest, case_id, analysis_id) -> HttpResponse:
    """A queued question is cancelled at once; a running one is asked to stop, and its
    worker stops it within a fraction of a second, keeping what it had written."""
    found = access.get_case_or_404(request.user, case_id, access.Action.ASK)
    analysis = get_object_or_404(Analysis, pk=analysis_id, case=found.case)
    before = analysis.status
    with transaction.atomic():
        if analysis.request_cancel():
            audit.record(
                AuditEvent.Action.ANALYSIS_CANCEL_REQUESTED,
                case=found.case,
                target=analysis,
                request=request,
                details={"status": before},
            )
            if analysis.status == Analysis.Status.CANCELLED:  # it never ran: nobody else says so
                audit.record(
                    AuditEvent.Action.ANALYSIS_CANCELLED,
                    case=found.case,
                    target=analysis,
                    details={"partial_chars": 0},
                )
            transaction.on_commit(lambda: streaming.publish_status(analysis))
    return _card_reply(request, found, analysis)


@login_required
@require_POST
def retry(request: HttpRequest, case_id, analysis_id) -> HttpResponse:
    """A failed question asked again as a new one: same question, items, thread, settings."""
    found = access.get_case_or_404(request.user, case_id, access.Action.ASK)
    original = get_object_or_404(Analysis, pk=analysis_id, case=found.case)
    if original.status != Analysis.Status.FAILED:
        return HttpResponse("Only a failed question can be retried.", status=409)
    with transaction.atomic():
        copy = original.ask_again(request.user, retry_of=original)
        audit.record(
            AuditEvent.Action.ANALYSIS_RETRIED,
            case=found.case,
            target=copy,
            request=request,
            details={"original": str(original.id), "error": original.error[:200]},
        )
        transaction.on_commit(lambda: pipeline.enqueue(copy))
    return _card_reply(request, found, copy)


def _card_reply(request: HttpRequest, found: access.CaseAccess, analysis: Analysis):
    if request.htmx:
        analysis.refresh_from_db()
        context = {"card": analysis_card(analysis), "case": found.case, "can_ask": True}
        return render(request, "analysis/cases/detail.html#analysis-card", context)
    return redirect("case-detail", case_id=found.case.id)


@login_required
@require_GET
def case_queue(request: HttpRequest, case_id) -> JsonResponse:
    """Where each of the case's queued questions stands, for the live cards, and the newest
    questions' ids: a page whose socket was away learns of questions asked meanwhile."""
    found = access.get_case_or_404(request.user, case_id)
    queued = list(found.case.analyses.filter(status=Analysis.Status.QUEUED))
    places = queue.places(queued)
    newest = found.case.analyses.order_by("-created_at", "-pk").values_list("pk", flat=True)
    return JsonResponse(
        {
            "places": {key: place.as_dict() for key, place in places.items()},
            "newest": [str(pk) for pk in newest[:NEWEST]],
        }
    )


@login_required
@require_GET
def jobs(request: HttpRequest) -> HttpResponse:
    """Queued and running questions across every case the user may see."""
    cases = access.visible_cases(request.user)
    roles = dict(cases.values_list("pk", "my_role"))
    live = list(
        Analysis.objects.filter(case__in=cases.values("pk"), status__in=LIVE)
        .select_related("case", "created_by")
        .order_by("created_at", "pk")[:500]
    )
    places = queue.places(live)
    holds: dict = {}  # a held case refuses cancelling too
    for hold in LegalHold.standing().filter(case_id__in={a.case_id for a in live}):
        holds.setdefault(hold.case_id, []).append(hold)
    rows = [
        {
            "analysis": a,
            "place": places.get(str(a.pk)),
            "can_cancel": access.CaseAccess(
                a.case, roles.get(a.case_id), holds=tuple(holds.get(a.case_id, ()))
            ).can(access.Action.ASK),
        }
        for a in live
    ]
    return render(request, "analysis/jobs/list.html", {"rows": rows})
