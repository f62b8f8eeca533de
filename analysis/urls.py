from __future__ import annotations

from django.urls import path

from analysis.views import analyses, cases

urlpatterns = [
    path("", cases.case_list, name="case-list"),
    path("cases/new/", cases.case_create, name="case-create"),
    path("cases/<uuid:case_id>/", cases.case_detail, name="case-detail"),
    path("cases/<uuid:case_id>/ask/", analyses.ask, name="analysis-ask"),
    path(
        "cases/<uuid:case_id>/analyses/<uuid:analysis_id>/",
        analyses.analysis_detail,
        name="analysis-detail",
    ),
]
