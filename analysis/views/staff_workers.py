"""Staff: the inference workers' health, from the heartbeats they write."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from analysis import access
from analysis.models import WorkerHeartbeat


@login_required
@require_GET
def worker_list(request: HttpRequest) -> HttpResponse:
    """Each worker's host, queues, model, current job, tokens/s and last beat; one that
    stopped beating is down. Metadata only: the job's case title, never its question."""
    if not access.is_staff(request.user):
        raise Http404("No such page.")
    now = timezone.now()
    workers = WorkerHeartbeat.objects.select_related("current_analysis__case").order_by("name")
    rows = [{"worker": w, "down": w.is_down(now)} for w in workers]
    return render(request, "analysis/staff/workers.html", {"rows": rows, "now": now})
