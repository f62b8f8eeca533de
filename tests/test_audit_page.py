"""The audit pages: who may read them, filters, pagination, and the verify button."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from analysis import audit, users
from analysis.models import AuditEvent
from analysis.views.audit import PER_PAGE
from tests.audit_helpers import forge

pytestmark = pytest.mark.django_db
A = AuditEvent.Action


@pytest.fixture
def cast(people, django_user_model):
    """The base cast plus an auditor (the role alone), an admin auditor and a plain admin."""
    auditor = django_user_model.objects.create_user("audrey", password="x")
    users.set_staff_roles(auditor, {users.AUDITOR})
    admin_auditor = django_user_model.objects.create_user("ada", password="x")
    users.set_staff_roles(admin_auditor, {users.ADMIN, users.AUDITOR})
    plain_staff = django_user_model.objects.create_user("sam", password="x", is_staff=True)
    return {
        "owner": people.alice, "reviewer": people.bob, "viewer": people.carol,
        "outsider": people.mallory, "auditor": auditor, "staff": plain_staff,
        "superuser": people.admin, "admin_auditor": admin_auditor,
    }  # fmt: skip


# Every member reads the case's trail (the wall is visible); export and verify are below.
CASE_PAGE = {
    "owner": 200, "reviewer": 200, "viewer": 200, "outsider": 404, "auditor": 200,
    "staff": 404, "superuser": 200, "admin_auditor": 200,
}  # fmt: skip
CASE_EXPORT = {**CASE_PAGE, "reviewer": 403, "viewer": 403}
GLOBAL_PAGE = {
    "owner": 404, "reviewer": 404, "viewer": 404, "outsider": 404, "auditor": 200,
    "staff": 404, "superuser": 200, "admin_auditor": 200,
}  # fmt: skip


@pytest.mark.parametrize("who", sorted(CASE_PAGE))
def test_the_case_audit_page_is_for_owners_and_staff_auditors(client, people, cast, who):
    client.force_login(cast[who])
    response = client.get(reverse("case-audit", args=[people.case.id]))
    assert response.status_code == CASE_PAGE[who]


@pytest.mark.parametrize("who", sorted(CASE_EXPORT))
def test_exporting_and_verifying_a_case_trail_is_for_owners_and_auditors(client, people, cast, who):
    client.force_login(cast[who])
    export = client.get(reverse("case-audit-csv", args=[people.case.id]))
    verify = client.post(reverse("case-audit-verify", args=[people.case.id]))
    assert (export.status_code, verify.status_code) == (CASE_EXPORT[who], CASE_EXPORT[who])


def test_a_viewer_reads_the_trail_without_export_or_verify_buttons(client, people):
    client.force_login(people.carol)
    page = client.get(reverse("case-audit", args=[people.case.id])).content.decode()
    assert "Audit trail" in page
    assert "Export CSV" not in page and "Verify chain" not in page


@pytest.mark.parametrize("who", sorted(GLOBAL_PAGE))
def test_the_global_audit_page_is_for_staff_auditors(client, cast, who):
    client.force_login(cast[who])
    assert client.get(reverse("audit-global")).status_code == GLOBAL_PAGE[who]


def test_anonymous_visitors_are_sent_to_sign_in(client, people):
    response = client.get(reverse("case-audit", args=[people.case.id]))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_an_auditor_gets_404_for_a_case_that_does_not_exist(client, cast):
    client.force_login(cast["auditor"])
    response = client.get(reverse("case-audit", args=["00000000-0000-0000-0000-000000000000"]))
    assert response.status_code == 404


def test_an_owner_still_audits_a_closed_case(client, people):
    people.case.transition("close")
    client.force_login(people.alice)
    assert client.get(reverse("case-audit", args=[people.case.id])).status_code == 200


def test_it_shows_the_case_events_only(client, people):
    audit.record(A.CASE_EDITED, actor=people.alice, case=people.case, details={"title": "New"})
    audit.record(A.SIGN_IN, actor=people.alice)  # global: not on the case page
    client.force_login(people.alice)
    page = client.get(reverse("case-audit", args=[people.case.id])).content.decode()
    assert "Case edited" in page and "<dt>title</dt><dd>New</dd>" in page
    assert "Signed in" not in page.split('id="audit-events"')[1]


def test_it_filters_by_actor_action_and_dates(client, people):
    audit.record(A.CASE_EDITED, actor=people.alice, case=people.case)
    audit.record(A.CASE_EDITED, actor=people.bob, case=people.case)
    audit.record(A.CASE_CLOSED, actor=people.alice, case=people.case)
    client.force_login(people.alice)
    url = reverse("case-audit", args=[people.case.id])

    def shown(**query) -> list[int]:
        return [e.seq for e in client.get(url, query).context["page"].object_list]

    assert shown() == [3, 2, 1]
    assert shown(actor="alice") == [3, 1]
    assert shown(action=A.CASE_EDITED) == [2, 1]
    assert shown(actor="alice", action=A.CASE_EDITED) == [1]
    today = timezone.localdate()
    assert shown(since=today.isoformat(), until=today.isoformat()) == [3, 2, 1]
    assert shown(since=(today + timedelta(days=1)).isoformat()) == []
    assert shown(until=(today - timedelta(days=1)).isoformat()) == []


def test_it_ignores_an_invalid_filter_and_says_so(client, people):
    audit.record(A.CASE_EDITED, actor=people.alice, case=people.case)
    client.force_login(people.alice)
    response = client.get(reverse("case-audit", args=[people.case.id]), {"since": "soon"})
    assert response.status_code == 200
    assert len(response.context["page"].object_list) == 1
    assert "Enter a valid date" in response.content.decode()


def test_it_pages_newest_first(client, people):
    for _ in range(PER_PAGE + 5):
        audit.record(A.CASE_EDITED, case=people.case)
    client.force_login(people.alice)
    url = reverse("case-audit", args=[people.case.id])
    first = client.get(url).context["page"]
    second = client.get(url, {"page": 2}).context["page"]
    assert first.object_list[0].seq == PER_PAGE + 5
    assert [e.seq for e in second.object_list] == [5, 4, 3, 2, 1]


def test_htmx_filtering_gets_the_events_table_only(client, people):
    audit.record(A.CASE_EDITED, case=people.case)
    client.force_login(people.alice)
    response = client.get(
        reverse("case-audit", args=[people.case.id]),
        HTTP_HX_REQUEST="true",
        HTTP_HX_TARGET="audit-events",
    )
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="audit-events">') and "<html" not in body


def test_the_verify_button_says_the_chain_is_intact(client, people):
    for _ in range(3):
        audit.record(A.CASE_EDITED, case=people.case)
    client.force_login(people.alice)
    response = client.post(reverse("case-audit-verify", args=[people.case.id]))
    assert "Chain intact: 3 events checked" in response.content.decode()


def test_the_verify_button_names_the_broken_event(client, people):
    events = [audit.record(A.CASE_EDITED, case=people.case) for _ in range(3)]
    forge(events[1], target_id="forged")
    client.force_login(people.alice)
    response = client.post(
        reverse("case-audit-verify", args=[people.case.id]), HTTP_HX_REQUEST="true"
    )
    body = response.content.decode()
    assert "Chain broken at event #2" in body and str(events[1].id) in body
    assert "<html" not in body


def test_the_global_verify_button_checks_the_global_chain(client, cast):
    audit.record(A.SIGN_IN, actor=cast["owner"])
    client.force_login(cast["auditor"])
    response = client.post(reverse("audit-global-verify"))
    # The cast's own role grants are on the global chain too.
    n = AuditEvent.objects.filter(case=None).count()
    assert f"Chain intact: {n} events checked" in response.content.decode()


def test_verify_must_be_posted(client, people):
    client.force_login(people.alice)
    response = client.get(reverse("case-audit-verify", args=[people.case.id]))
    assert response.status_code == 405
