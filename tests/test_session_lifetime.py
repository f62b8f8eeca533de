"""Sessions end on an idle timeout and an absolute lifetime, both from settings."""

from __future__ import annotations

import time

import pytest
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from analysis import signin
from analysis.models import AuditEvent
from gemma_web import settings as site
from tests.base import PASSWORD

pytestmark = pytest.mark.django_db


def signed_in() -> Client:
    client = Client()
    client.post(reverse("login"), {"username": "bob", "password": PASSWORD})
    return client


def test_the_defaults_suit_sensitive_data():
    assert site.SESSION_COOKIE_AGE == site.SESSION_IDLE_SECONDS == 30 * 60
    assert site.SESSION_MAX_SECONDS == 12 * 3600


def test_requests_push_the_idle_expiry_forward(people):
    client = signed_in()
    key = client.session.session_key
    session = client.session
    session[signin.REFRESHED_AT] = time.time() - signin.REFRESH_EVERY
    session.save()
    Session.objects.filter(pk=key).update(expire_date=timezone.now() + timezone.timedelta(60))
    client.get(reverse("case-list"))
    left = Session.objects.get(pk=key).expire_date - timezone.now()
    assert left.total_seconds() <= site.SESSION_IDLE_SECONDS


def test_an_idle_session_is_signed_out(people):
    client = signed_in()
    Session.objects.filter(pk=client.session.session_key).update(expire_date=timezone.now())
    assert client.get(reverse("case-list")).status_code == 302


def test_a_session_past_its_lifetime_ends_however_busy(people, settings):
    settings.SESSION_MAX_SECONDS = 3600
    client = signed_in()
    session = client.session
    session[signin.SIGNED_IN_AT] = time.time() - 3601
    session.save()
    response = client.get(reverse("case-list"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    assert client.get(reverse("case-list"))["Location"].startswith(reverse("login"))
    assert AuditEvent.objects.filter(action=AuditEvent.Action.SESSION_EXPIRED).exists()
