"""Repeated failures lock sign-in per account and per address (django-axes), on the record."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from analysis.models import AuditEvent
from tests.base import PASSWORD

pytestmark = pytest.mark.django_db
A = AuditEvent.Action
LIMIT = 3


@pytest.fixture(autouse=True)
def _limit(settings):
    settings.AXES_FAILURE_LIMIT = LIMIT


def sign_in(username: str, password: str, address: str = "203.0.113.7"):
    return Client(REMOTE_ADDR=address).post(
        reverse("login"), {"username": username, "password": password}
    )


def test_an_account_locks_after_the_configured_failures(people):
    for _ in range(LIMIT - 1):
        assert sign_in("bob", "wrong").status_code == 200  # the form again, with its error
    assert sign_in("bob", "wrong").status_code == 429
    # Now even the right password is refused, from anywhere.
    refused = sign_in("bob", PASSWORD, address="198.51.100.9")
    assert refused.status_code == 429 and b"Too many failed sign-ins" in refused.content
    locked = AuditEvent.objects.filter(action=A.SIGN_IN_LOCKED_OUT)
    assert locked.exists() and locked.first().details["username"] == "bob"
    assert not AuditEvent.objects.filter(action=A.SIGN_IN).exists()


def test_other_accounts_sign_in_meanwhile(people):
    for _ in range(LIMIT):
        sign_in("bob", "wrong")
    assert sign_in("alice", PASSWORD, address="198.51.100.9").status_code == 302


def test_an_address_locks_after_failures_against_many_accounts(people):
    for name in ["alice", "bob", "carol"][:LIMIT]:
        sign_in(name, "wrong", address="192.0.2.50")
    assert sign_in("mallory", PASSWORD, address="192.0.2.50").status_code == 429
    assert sign_in("mallory", PASSWORD, address="192.0.2.51").status_code == 302


def test_a_success_before_the_limit_resets_the_count(people):
    for _ in range(LIMIT - 1):
        sign_in("bob", "wrong")
    assert sign_in("bob", PASSWORD).status_code == 302
    for _ in range(LIMIT - 1):
        sign_in("bob", "wrong")
    assert sign_in("bob", PASSWORD).status_code == 302


def test_an_admin_unlocks_an_account(people):
    for _ in range(LIMIT):
        sign_in("bob", "wrong", address=f"192.0.2.{_ + 1}")
    assert sign_in("bob", PASSWORD).status_code == 429
    admin = Client()
    admin.force_login(people.admin)
    page = admin.get(reverse("staff-user", args=[people.bob.pk])).content.decode()
    assert "locked out" in page
    response = admin.post(reverse("staff-unlock"), {"username": "bob"})
    assert response.status_code == 302
    assert sign_in("bob", PASSWORD).status_code == 302
    unlocked = AuditEvent.objects.get(action=A.SIGN_IN_UNLOCKED)
    assert unlocked.actor == people.admin and unlocked.details["username"] == "bob"


def test_an_admin_unlocks_an_address(people):
    for name in ["alice", "bob", "carol"][:LIMIT]:
        sign_in(name, "wrong", address="192.0.2.50")
    admin = Client()
    admin.force_login(people.admin)
    assert "192.0.2.50" in admin.get(reverse("staff-users")).content.decode()
    admin.post(reverse("staff-unlock"), {"address": "192.0.2.50"})
    assert sign_in("mallory", PASSWORD, address="192.0.2.50").status_code == 302


def test_only_admins_may_unlock(people, client):
    client.force_login(people.bob)
    assert client.post(reverse("staff-unlock"), {"username": "bob"}).status_code == 404
    assert not AuditEvent.objects.filter(action=A.SIGN_IN_UNLOCKED).exists()
