from __future__ import annotations

from django.urls import path

from analysis.views import (
    account,
    analyses,
    audit,
    batches,
    cases,
    media,
    members,
    people,
    reports,
    retention,
    review,
    staff,
    staff_workers,
    steering,
    uploads,
)
from analysis.views import models as model_views
from analysis.views import prompt_templates as templates

# Every route under "cases/<uuid:case_id>/" must appear in tests/test_case_access.py's matrix.
# tests/test_attack_routes.py finds every route by itself and attacks it with foreign ids.
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
    path(
        "cases/<uuid:case_id>/analyses/<uuid:analysis_id>/reproduce/",
        analyses.reproduce,
        name="analysis-reproduce",
    ),
    # Media: the upload API (tus 1.0, docs/upload-api.md), pages, serving.
    path("cases/<uuid:case_id>/uploads/", uploads.upload_create, name="media-upload-create"),
    path(
        "cases/<uuid:case_id>/uploads/<uuid:upload_id>/",
        uploads.upload_detail,
        name="media-upload",
    ),
    path("cases/<uuid:case_id>/media/<uuid:asset_id>/", media.media_detail, name="media-detail"),
    path("cases/<uuid:case_id>/media/<uuid:asset_id>/file", media.media_file, name="media-file"),
    path(
        "cases/<uuid:case_id>/media/<uuid:asset_id>/derived/<str:name>",
        media.media_derived,
        name="media-derived",
    ),
    path(
        "cases/<uuid:case_id>/media/<uuid:asset_id>/delete/",
        media.media_delete,
        name="media-delete",
    ),
    # Reviewing: marks and notes, the case report, search across the cases one may see.
    path(
        "cases/<uuid:case_id>/analyses/<uuid:analysis_id>/mark/",
        review.mark_answer,
        name="analysis-mark",
    ),
    path(
        "cases/<uuid:case_id>/analyses/<uuid:analysis_id>/notes/",
        review.note_on_answer,
        name="analysis-note",
    ),
    path(
        "cases/<uuid:case_id>/media/<uuid:asset_id>/notes/", review.note_on_media, name="media-note"
    ),
    path("cases/<uuid:case_id>/report/", reports.case_report, name="case-report"),
    path("search/", reports.search_page, name="search"),
    path("staff/cases/", staff.staff_case_list, name="staff-case-list"),
    # People: staff user administration (admins), and each user's own sign-in settings.
    path("staff/users/", people.user_list, name="staff-users"),
    path("staff/users/invite/", people.user_invite, name="staff-user-invite"),
    path("staff/users/unlock/", people.unlock, name="staff-unlock"),
    path("staff/users/<int:user_id>/", people.user_detail, name="staff-user"),
    path("staff/users/<int:user_id>/active/", people.user_set_active, name="staff-user-active"),
    path("staff/users/<int:user_id>/roles/", people.user_set_roles, name="staff-user-roles"),
    path(
        "staff/users/<int:user_id>/password/",
        people.user_reset_password,
        name="staff-user-password",
    ),
    path(
        "staff/users/<int:user_id>/two-factor/",
        people.user_reset_two_factor,
        name="staff-user-two-factor",
    ),
    path("account/password/", account.password_change_required, name="password-change-required"),
    path("account/two-factor/", account.two_factor_enrol, name="two-factor-enrol"),
    path("account/two-factor/verify/", account.two_factor_verify, name="two-factor-verify"),
    path("invitation/<str:token>/", account.invitation_accept, name="invitation-accept"),
    # Model registry: superusers only.
    path("staff/models/", model_views.model_list, name="model-list"),
    path("staff/models/register/", model_views.model_register, name="model-register"),
    path("staff/models/<int:model_id>/", model_views.model_edit, name="model-edit"),
    path(
        "staff/models/<int:model_id>/default/",
        model_views.model_set_default,
        name="model-set-default",
    ),
    # Audit trail: a case's chain (owners, staff auditors) and the global chain (auditors).
    path("cases/<uuid:case_id>/audit/", audit.case_audit, name="case-audit"),
    path("cases/<uuid:case_id>/audit/verify/", audit.case_audit_verify, name="case-audit-verify"),
    path(
        "cases/<uuid:case_id>/audit/export.csv",
        audit.case_audit_export,
        {"fmt": "csv"},
        name="case-audit-csv",
    ),
    path(
        "cases/<uuid:case_id>/audit/export.json",
        audit.case_audit_export,
        {"fmt": "json"},
        name="case-audit-json",
    ),
    # The reviewer's workflow: steer questions, the shared queue, templates, batches.
    path(
        "cases/<uuid:case_id>/analyses/<uuid:analysis_id>/cancel/",
        steering.cancel,
        name="analysis-cancel",
    ),
    path(
        "cases/<uuid:case_id>/analyses/<uuid:analysis_id>/retry/",
        steering.retry,
        name="analysis-retry",
    ),
    path("cases/<uuid:case_id>/queue/", steering.case_queue, name="case-queue"),
    path("jobs/", steering.jobs, name="jobs"),
    path("cases/<uuid:case_id>/templates/", templates.template_list, name="case-templates"),
    path(
        "cases/<uuid:case_id>/templates/<int:template_id>/",
        templates.template_edit,
        name="case-template-edit",
    ),
    path(
        "cases/<uuid:case_id>/templates/<int:template_id>/delete/",
        templates.template_delete,
        name="case-template-delete",
    ),
    path("staff/templates/", templates.template_list, name="staff-templates"),
    path("staff/workers/", staff_workers.worker_list, name="staff-workers"),
    path("staff/templates/<int:template_id>/", templates.template_edit, name="staff-template-edit"),
    path(
        "staff/templates/<int:template_id>/delete/",
        templates.template_delete,
        name="staff-template-delete",
    ),
    path("cases/<uuid:case_id>/batches/", batches.batch_create, name="batch-create"),
    path("cases/<uuid:case_id>/batches/<uuid:batch_id>/", batches.batch_row, name="batch-row"),
    path(
        "cases/<uuid:case_id>/batches/<uuid:batch_id>/export.csv",
        batches.batch_csv,
        name="batch-csv",
    ),
    # Retention: schedule, override, legal holds, early deletion, certificates; staff policy.
    path("cases/<uuid:case_id>/retention/", retention.case_retention, name="case-retention"),
    path(
        "cases/<uuid:case_id>/retention/policy/",
        retention.case_policy,
        name="case-retention-policy",
    ),
    path("cases/<uuid:case_id>/holds/", retention.hold_place, name="case-hold-place"),
    path(
        "cases/<uuid:case_id>/holds/<uuid:hold_id>/lift/",
        retention.hold_lift,
        name="case-hold-lift",
    ),
    path(
        "cases/<uuid:case_id>/deletion-requests/",
        retention.deletion_request,
        name="case-deletion-request",
    ),
    path(
        "cases/<uuid:case_id>/purge-certificate.json",
        retention.case_certificate,
        name="case-purge-certificate",
    ),
    path("staff/retention/", retention.staff_retention, name="staff-retention"),
    path(
        "staff/retention/runs/<uuid:run_id>/certificate.json",
        retention.run_certificate,
        name="purge-run-certificate",
    ),
    path(
        "staff/retention/requests/<uuid:request_id>/decide/",
        retention.decide_request,
        name="deletion-request-decide",
    ),
    path("audit/", audit.global_audit, name="audit-global"),
    path("audit/verify/", audit.global_audit_verify, name="audit-global-verify"),
    path("audit/export.csv", audit.global_audit_export, {"fmt": "csv"}, name="audit-global-csv"),
    path("audit/export.json", audit.global_audit_export, {"fmt": "json"}, name="audit-global-json"),
]
