"""The case report download (PDF or HTML) and the search page."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import render
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_GET, require_POST

from analysis import access, report, search

# The HTML report carries its own styles and data: images and no script at all; opened
# from the site it may use exactly that.
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


@login_required
@require_POST
def case_report(request: HttpRequest, case_id) -> HttpResponse:
    found = access.get_case_or_404(request.user, case_id)
    fmt = request.POST.get("format", "pdf")
    if fmt not in report.FORMATS:
        return HttpResponseBadRequest("Choose the report format: pdf or html.")
    made = report.export(found.case, fmt=fmt, user=request.user, request=request)
    response = HttpResponse(made.content, content_type=made.content_type)
    response["Content-Disposition"] = content_disposition_header(
        as_attachment=True, filename=made.filename
    )
    response["X-Report-SHA256"] = made.sha256
    response["Cache-Control"] = "no-store"
    response["Content-Security-Policy"] = REPORT_CSP
    return response


@login_required
@require_GET
def search_page(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()[:200]
    hits = search.search(request.user, query) if query else []
    return render(request, "analysis/search.html", {"q": query, "hits": hits})
