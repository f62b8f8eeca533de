from __future__ import annotations

from django.urls import path

from analysis.views import analyses, cases, members, staff

# Every route under "cases/<uuid:case_id>/" must appear in tests/test_case_access.py's matrix.
urlpatterns = [
    path("", cases.case_list, name="case-list"),
    path("cases/new/", cases.case_create, name="case-create"),
    path("cases/<uuid:case_id>/", cases.case_detail, name="case-detail"),
    path("cases/<uuid:case_id>/edit/", cases.case_edit, name="case-edit"),
    path("cases/<uuid:case_id>/status/", cases.case_set_status, name="case-set-status"),
    path("cases/<uuid:case_id>/members/", members.member_list, name="member-list"),
    path("cases/<uuid:case_id>/members/add/", members.member_add, name="member-add"),
    path(
        "cases/<uuid:case_id>/members/<int:membership_id>/role/",
        members.member_role,
        name="member-role",
    ),
    path(
        "cases/<uuid:case_id>/members/<int:membership_id>/remove/",
        members.member_remove,
        name="member-remove",
    ),
    path("cases/<uuid:case_id>/break-glass/", staff.break_glass, name="break-glass"),
    path("cases/<uuid:case_id>/ask/", analyses.ask, name="analysis-ask"),
    path(
        "cases/<uuid:case_id>/analyses/<uuid:analysis_id>/",
        analyses.analysis_detail,
        name="analysis-detail",
    ),
    path("staff/cases/", staff.staff_case_list, name="staff-case-list"),
]
