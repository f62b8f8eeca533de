"""OpenID Connect sign-in against a real provider (node-oidc-provider): the account is created
with the role its groups claim maps to, and loses it at the next sign-in once removed."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from analysis import users
from analysis.models import AuditEvent
from tests import oidc_server

oidc_server.require_node()
pytestmark = pytest.mark.django_db
A = AuditEvent.Action
CALLBACK = "http://testserver/oidc/callback/"


@pytest.fixture(scope="module")
def provider():
    server = oidc_server.start(CALLBACK)
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _oidc_on(settings, provider):
    settings.OIDC_ENABLED = True
    settings.OIDC_RP_CLIENT_ID = oidc_server.CLIENT_ID
    settings.OIDC_RP_CLIENT_SECRET = oidc_server.CLIENT_SECRET
    for name, value in provider.endpoints().items():
        setattr(settings, name, value)
    settings.AUTHENTICATION_BACKENDS = [
        "axes.backends.AxesStandaloneBackend",
        "django.contrib.auth.backends.ModelBackend",
        "analysis.sso.OIDCBackend",
    ]
    settings.OIDC_ROLE_GROUPS = {"admin": "gemma-admins", "auditor": "gemma-auditors"}


def sign_in(provider, username: str) -> Client:
    client = Client()
    start = client.get(reverse("oidc_authentication_init"))
    assert start.status_code == 302 and start["Location"].startswith(provider.base)
    back = provider.sign_in(start["Location"], username)
    assert back.startswith(CALLBACK), back
    done = client.get(back.removeprefix("http://testserver"))
    assert done.status_code == 302, done.content[:500]
    return client


def test_the_login_page_offers_single_sign_on(provider):
    page = Client().get(reverse("login")).content.decode()
    assert reverse("oidc_authentication_init") in page


def test_a_provider_user_signs_in_with_the_mapped_role(provider):
    provider.set_account("frank", "frank@example.org", ["gemma-admins", "staff-party"])
    client = sign_in(provider, "frank")
    frank = get_user_model().objects.get(username="frank")
    assert users.staff_roles(frank) == {"admin"} and frank.email == "frank@example.org"
    assert client.get(reverse("staff-users")).status_code == 200
    assert AuditEvent.objects.get(action=A.USER_CREATED).details["via"] == "oidc"
    assert AuditEvent.objects.filter(action=A.SIGN_IN, actor=frank).exists()


def test_removed_from_the_group_the_role_goes_at_next_sign_in(provider):
    provider.set_account("grace", "grace@example.org", ["gemma-auditors"])
    assert sign_in(provider, "grace").get(reverse("audit-global")).status_code == 200
    provider.set_account("grace", "grace@example.org", [])
    client = sign_in(provider, "grace")
    grace = get_user_model().objects.get(username="grace")
    assert users.staff_roles(grace) == set()
    assert client.get(reverse("audit-global")).status_code == 404
    change = AuditEvent.objects.filter(action=A.USER_ROLE_CHANGED).order_by("-created_at")[0]
    assert change.details["via"] == "oidc"


def test_off_by_default_the_routes_are_404(settings):
    settings.OIDC_ENABLED = False
    assert Client().get(reverse("oidc_authentication_init")).status_code == 404
    assert (
        reverse("oidc_authentication_init") not in Client().get(reverse("login")).content.decode()
    )
