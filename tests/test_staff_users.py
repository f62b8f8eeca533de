"""The staff user pages: admins find, invite, deactivate, reset and assign staff roles;
every action is an audit event; nobody else even sees the pages."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse

from analysis import access, users
from analysis.models import Account, AuditEvent
from tests.base import PASSWORD

pytestmark = pytest.mark.django_db
A = AuditEvent.Action


@pytest.fixture
def admin(people) -> Client:
    client = Client()
    client.force_login(people.admin)
    return client


def events(action) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action))


def test_the_list_shows_status_roles_last_sign_in_and_cases(admin, people):
    Client().post(reverse("login"), {"username": "bob", "password": PASSWORD})
    users.set_staff_roles(people.carol, {users.AUDITOR})
    page = admin.get(reverse("staff-users"))
    rows = {person.username: (roles, person) for person, roles, _ in page.context["rows"]}
    assert rows["carol"][0] == ["auditor"] and rows["admin"][0] == ["admin"]
    assert rows["bob"][1].last_login is not None and rows["bob"][1].n_cases == 1
    assert rows["mallory"][1].n_cases == 0


def test_search_and_status_filter(admin, people):
    people.mallory.is_active = False
    people.mallory.save()
    found = admin.get(reverse("staff-users"), {"q": "car"}).context["rows"]
    assert [p.username for p, _, _ in found] == ["carol"]
    inactive = admin.get(reverse("staff-users"), {"status": "inactive"}).context["rows"]
    assert [p.username for p, _, _ in inactive] == ["mallory"]


@pytest.mark.parametrize("who", ["alice", "bob", "mallory"])
def test_the_pages_are_404_for_everyone_but_admins(people, who):
    client = Client()
    client.force_login(getattr(people, who))
    assert client.get(reverse("staff-users")).status_code == 404
    assert client.get(reverse("staff-user", args=[people.bob.pk])).status_code == 404
    assert client.post(reverse("staff-user-active", args=[people.bob.pk])).status_code == 404


def test_an_auditor_reads_audit_trails_and_nothing_else(people):
    users.set_staff_roles(people.mallory, {users.AUDITOR})
    client = Client()
    client.force_login(people.mallory)
    assert client.get(reverse("audit-global")).status_code == 200
    assert client.get(reverse("case-audit", args=[people.case.id])).status_code == 200
    for name in ["staff-users", "staff-case-list"]:
        assert client.get(reverse(name)).status_code == 404
    assert client.get(reverse("case-detail", args=[people.case.id])).status_code == 404
    assert client.get(reverse("break-glass", args=[people.case.id])).status_code == 404
    assert not access.is_admin(people.mallory)


def test_granting_and_removing_roles_is_recorded(admin, people):
    url = reverse("staff-user-roles", args=[people.bob.pk])
    admin.post(url, {"roles": ["admin", "auditor"]})
    people.bob.refresh_from_db()
    assert users.staff_roles(people.bob) == {"admin", "auditor"}
    admin.post(url, {"roles": []})
    people.bob.refresh_from_db()
    assert users.staff_roles(people.bob) == set()
    changes = events(A.USER_ROLE_CHANGED)
    assert len(changes) == 2 and changes[0].actor == people.admin


def test_an_unknown_role_changes_nothing(admin, people):
    admin.post(reverse("staff-user-roles", args=[people.bob.pk]), {"roles": ["superuser"]})
    people.bob.refresh_from_db()
    assert users.staff_roles(people.bob) == set() and not events(A.USER_ROLE_CHANGED)


def test_deactivating_ends_sessions_and_reactivating_is_recorded(admin, people):
    bob = Client()
    bob.force_login(people.bob)
    assert Session.objects.count() == 2
    admin.post(reverse("staff-user-active", args=[people.bob.pk]), {"active": "0"})
    assert Session.objects.count() == 1  # the admin's own
    assert bob.get(reverse("case-list")).status_code == 302
    assert (
        Client().post(reverse("login"), {"username": "bob", "password": PASSWORD}).status_code
        == 200
    )
    admin.post(reverse("staff-user-active", args=[people.bob.pk]), {"active": "1"})
    assert [e.actor for e in events(A.USER_DEACTIVATED)] == [people.admin]
    assert [e.actor for e in events(A.USER_REACTIVATED)] == [people.admin]


def test_an_admin_cannot_lock_themselves_out(admin, people):
    admin.post(reverse("staff-user-active", args=[people.admin.pk]), {"active": "0"})
    admin.post(reverse("staff-user-roles", args=[people.admin.pk]), {"roles": []})
    people.admin.refresh_from_db()
    assert people.admin.is_active and people.admin.is_staff


def test_invite_with_a_temporary_password(admin):
    response = admin.post(
        reverse("staff-user-invite"), {"username": "dora", "how": "password", "roles": ["admin"]}
    )
    password = response.context["password"]
    dora = get_user_model().objects.get(username="dora")
    assert dora.check_password(password) and dora.is_staff and Account.must_change(dora)
    assert events(A.USER_INVITED)[0].details["how"] == "temporary password"


def test_a_taken_username_is_refused(admin, people):
    response = admin.post(reverse("staff-user-invite"), {"username": "Bob", "how": "link"})
    assert response.status_code == 200 and b"already exists" in response.content
    assert not events(A.USER_INVITED)


def test_a_password_reset_ends_sessions_and_is_recorded(admin, people):
    bob = Client()
    bob.force_login(people.bob)
    response = admin.post(reverse("staff-user-password", args=[people.bob.pk]), {"how": "password"})
    temporary = response.context["password"]
    assert bob.get(reverse("case-list")).status_code == 302
    people.bob.refresh_from_db()
    assert people.bob.check_password(temporary) and not people.bob.check_password(PASSWORD)
    assert events(A.PASSWORD_RESET)[0].details["sessions_ended"] == 1
