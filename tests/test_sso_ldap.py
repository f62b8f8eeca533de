"""LDAP sign-in against a real slapd: the account is created with the role its directory
groups map to, and loses the role at the next sign-in once removed from the group."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from analysis import users
from analysis.models import AuditEvent
from analysis.sso_settings import ldap_settings
from tests import ldap_server

ldap_server.require_slapd()
pytest.importorskip(
    "django_auth_ldap", reason="LDAP sign-in is not installed (scripts/bootstrap: libldap2-dev)"
)
pytestmark = pytest.mark.django_db
A = AuditEvent.Action


@pytest.fixture(scope="module")
def directory():
    server = ldap_server.start()
    dave = server.add_person("dave", "dave-secret", "dave@example.org")
    erin = server.add_person("erin", "erin-secret", "erin@example.org")
    server.admins = server.add_group("gemma-admins", [dave])
    server.auditors = server.add_group("gemma-auditors", [dave, erin])
    server.dave = dave
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _ldap_on(settings, directory):
    base = ldap_server.BASE
    env = {
        "LDAP_SERVER_URI": directory.uri,
        "LDAP_BIND_DN": ldap_server.ROOT_DN,
        "LDAP_BIND_PASSWORD": ldap_server.ROOT_PW,
        "LDAP_USER_BASE": f"ou=people,{base}",
        "LDAP_GROUP_BASE": f"ou=groups,{base}",
    }
    for name, value in ldap_settings(env).items():
        setattr(settings, name, value)
    settings.AUTHENTICATION_BACKENDS = [
        "axes.backends.AxesStandaloneBackend",
        "analysis.sso_ldap.LDAPBackend",
        "django.contrib.auth.backends.ModelBackend",
    ]
    settings.LDAP_ROLE_GROUPS = {"admin": directory.admins, "auditor": directory.auditors}


def sign_in(username: str, password: str):
    client = Client()
    response = client.post(reverse("login"), {"username": username, "password": password})
    return client, response


def test_a_directory_user_signs_in_and_gets_the_mapped_roles(directory):
    client, response = sign_in("dave", "dave-secret")
    assert response.status_code == 302
    dave = get_user_model().objects.get(username="dave")
    assert users.staff_roles(dave) == {"admin", "auditor"}
    assert dave.email == "dave@example.org" and not dave.has_usable_password()
    assert client.get(reverse("staff-users")).status_code == 200
    created = AuditEvent.objects.get(action=A.USER_CREATED)
    assert created.details["via"] == "ldap"
    assert AuditEvent.objects.filter(action=A.SIGN_IN, actor=dave).exists()


def test_only_the_groups_a_user_is_in_count(directory):
    sign_in("erin", "erin-secret")
    assert users.staff_roles(get_user_model().objects.get(username="erin")) == {"auditor"}


def test_removed_from_the_group_the_role_goes_at_next_sign_in(directory):
    sign_in("dave", "dave-secret")
    directory.remove_member(directory.admins, directory.dave)
    try:
        client, response = sign_in("dave", "dave-secret")
        assert response.status_code == 302
        dave = get_user_model().objects.get(username="dave")
        assert users.staff_roles(dave) == {"auditor"}
        assert client.get(reverse("staff-users")).status_code == 404
        change = AuditEvent.objects.filter(action=A.USER_ROLE_CHANGED).order_by("-created_at")[0]
        assert change.details["via"] == "ldap" and change.details["to"]["is_staff"] is False
    finally:
        directory.connect().modify_s(directory.admins, [(0, "member", [directory.dave.encode()])])


def test_a_wrong_directory_password_is_refused(directory):
    _, response = sign_in("dave", "wrong")
    assert response.status_code == 200
    assert not get_user_model().objects.filter(username="dave").exists()
    assert AuditEvent.objects.filter(action=A.SIGN_IN_FAILED).exists()


def test_local_accounts_still_sign_in(people, directory):
    from tests.base import PASSWORD

    assert sign_in("bob", PASSWORD)[1].status_code == 302
