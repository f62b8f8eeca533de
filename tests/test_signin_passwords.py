"""Passwords: Argon2 first (older hashes upgrade at sign-in), temporary passwords that must be
changed, single-use invitation links that expire."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from analysis import users
from analysis.models import Account, AuditEvent, Invitation
from tests.base import PASSWORD

pytestmark = pytest.mark.django_db
A = AuditEvent.Action
NEW = "a brand new passphrase 42"


def sign_in(username: str, password: str) -> Client:
    client = Client()
    client.post(reverse("login"), {"username": username, "password": password})
    return client


def test_argon2_is_first_and_old_hashes_upgrade_at_sign_in(people, settings):
    from gemma_web import settings as site

    settings.PASSWORD_HASHERS = site.PASSWORD_HASHERS  # the site's, not the tests' fast MD5
    assert site.PASSWORD_HASHERS[0].endswith("Argon2PasswordHasher")
    bob = people.bob
    bob.password = make_password(PASSWORD, hasher="pbkdf2_sha256")
    bob.save(update_fields=["password"])
    client = sign_in("bob", PASSWORD)
    assert client.get(reverse("case-list")).status_code == 200
    bob.refresh_from_db()
    assert bob.password.startswith("argon2$argon2id$")
    assert sign_in("bob", PASSWORD).get(reverse("case-list")).status_code == 200


def test_a_temporary_password_must_be_changed_first(people):
    secret = users.reset_password(people.bob, by=people.admin)
    client = sign_in("bob", secret)
    blocked = client.get(reverse("case-detail", args=[people.case.id]))
    assert blocked.status_code == 302
    assert blocked["Location"].startswith(reverse("password-change-required"))
    form = {"new_password1": NEW, "new_password2": NEW}
    done = client.post(reverse("password-change-required"), form)
    assert done.status_code == 302
    assert client.get(reverse("case-detail", args=[people.case.id])).status_code == 200
    assert not Account.must_change(people.bob)
    assert AuditEvent.objects.filter(action=A.PASSWORD_CHANGED, actor=people.bob).exists()
    assert sign_in("bob", NEW).get(reverse("case-list")).status_code == 200


def test_a_weak_new_password_is_refused_and_nothing_changes(people):
    secret = users.reset_password(people.bob, by=people.admin)
    client = sign_in("bob", secret)
    response = client.post(
        reverse("password-change-required"), {"new_password1": "123", "new_password2": "123"}
    )
    assert response.status_code == 200 and b"too short" in response.content
    assert Account.must_change(people.bob)


def test_an_invitation_link_works_once(people):
    admin = Client()
    admin.force_login(people.admin)
    response = admin.post(
        reverse("staff-user-invite"),
        {"username": "dora", "email": "dora@example.org", "how": "link", "roles": ["auditor"]},
    )
    url = response.context["url"]
    assert "/invitation/" in url
    dora = get_user_model().objects.get(username="dora")
    assert not dora.has_usable_password() and users.staff_roles(dora) == {"auditor"}
    path = url.split("testserver", 1)[1]
    visitor = Client()
    assert visitor.get(path).status_code == 200
    assert visitor.post(path, {"new_password1": NEW, "new_password2": NEW}).status_code == 302
    assert sign_in("dora", NEW).get(reverse("audit-global")).status_code == 200
    assert Client().get(path).status_code == 404  # used
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {A.USER_CREATED, A.USER_INVITED, A.INVITATION_ACCEPTED} <= actions


def test_an_expired_invitation_does_not_work(people):
    user = get_user_model().objects.create_user("eve")
    invitation, token = Invitation.issue(user=user, created_by=people.admin)
    Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - timedelta(1))
    response = Client().post(
        reverse("invitation-accept", args=[token]), {"new_password1": NEW, "new_password2": NEW}
    )
    assert response.status_code == 404
    user.refresh_from_db()
    assert not user.has_usable_password()


def test_a_new_link_replaces_the_old_one(people):
    user = get_user_model().objects.create_user("eve")
    _, old = Invitation.issue(user=user, created_by=people.admin)
    _, new = Invitation.issue(user=user, created_by=people.admin)
    assert Client().get(reverse("invitation-accept", args=[old])).status_code == 404
    assert Client().get(reverse("invitation-accept", args=[new])).status_code == 200
