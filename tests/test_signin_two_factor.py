"""Two-factor sign-in through the real login view: TOTP, QR enrolment, recovery codes."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from analysis import twofactor
from analysis.models import AuditEvent
from tests.base import PASSWORD

pytestmark = pytest.mark.django_db
A = AuditEvent.Action


@pytest.fixture(autouse=True)
def _no_throttle(settings):
    # django-otp makes a device wait 1, 2, 4 ... s after each wrong code; these tests type a
    # wrong code and then the right one at once (the throttle has its own test below).
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    settings.OTP_STATIC_THROTTLE_FACTOR = 0


def code_for(device: TOTPDevice) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{totp.token():0{device.digits}d}"


def sign_in(username: str) -> Client:
    client = Client()
    response = client.post(reverse("login"), {"username": username, "password": PASSWORD})
    assert response.status_code == 302
    return client


def enrolled(user) -> tuple[TOTPDevice, list[str]]:
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    return device, twofactor.new_recovery_codes(user)


def case_page(client: Client, people):
    return client.get(reverse("case-detail", args=[people.case.id]))


def test_required_two_factor_blocks_a_user_without_a_device(people, settings):
    settings.TWO_FACTOR_REQUIRED = "all"
    client = sign_in("bob")
    response = case_page(client, people)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("two-factor-enrol"))
    assert client.get(reverse("case-list")).status_code == 302


def test_enrolment_shows_a_qr_code_and_then_recovery_codes(people, settings):
    settings.TWO_FACTOR_REQUIRED = "all"
    client = sign_in("bob")
    page = client.get(reverse("two-factor-enrol")).content.decode()
    assert "<svg" in page and "otpauth" not in page  # the URI is inside the QR, not in text
    device = TOTPDevice.objects.get(user=people.bob, confirmed=False)
    wrong = client.post(reverse("two-factor-enrol"), {"code": "000000"})
    assert wrong.status_code == 200 and b"not the one" in wrong.content
    done = client.post(reverse("two-factor-enrol"), {"code": code_for(device)})
    assert done.status_code == 200 and len(done.context["codes"]) == settings.RECOVERY_CODES
    assert case_page(client, people).status_code == 200
    assert AuditEvent.objects.filter(action=A.TWO_FACTOR_ENROLLED, actor=people.bob).exists()


def test_a_user_with_a_device_is_admitted_only_with_a_valid_code(people):
    device, _ = enrolled(people.bob)
    client = sign_in("bob")
    blocked = case_page(client, people)
    assert blocked["Location"].startswith(reverse("two-factor-verify"))
    refused = client.post(reverse("two-factor-verify"), {"code": "123456"})
    assert refused.status_code == 200 and case_page(client, people).status_code == 302
    assert AuditEvent.objects.filter(action=A.TWO_FACTOR_FAILED).exists()
    next_url = reverse("case-detail", args=[people.case.id])
    admitted = client.post(
        reverse("two-factor-verify"), {"code": code_for(device), "next": next_url}
    )
    assert admitted.status_code == 302 and admitted["Location"] == next_url
    assert case_page(client, people).status_code == 200
    assert AuditEvent.objects.filter(action=A.TWO_FACTOR_VERIFIED, actor=people.bob).exists()


def test_a_recovery_code_works_once(people):
    _, codes = enrolled(people.bob)
    first = sign_in("bob")
    assert first.post(reverse("two-factor-verify"), {"code": codes[0]}).status_code == 302
    assert case_page(first, people).status_code == 200
    assert AuditEvent.objects.filter(action=A.RECOVERY_CODE_USED).count() == 1
    second = sign_in("bob")
    assert second.post(reverse("two-factor-verify"), {"code": codes[0]}).status_code == 200
    assert case_page(second, people).status_code == 302
    assert second.post(reverse("two-factor-verify"), {"code": codes[1]}).status_code == 302


def test_a_right_code_right_after_wrong_ones_is_throttled(people, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 60
    device, _ = enrolled(people.bob)
    client = sign_in("bob")
    client.post(reverse("two-factor-verify"), {"code": "123456"})
    assert client.post(reverse("two-factor-verify"), {"code": code_for(device)}).status_code == 200
    assert case_page(client, people).status_code == 302


def test_a_stricter_policy_reaches_sessions_already_signed_in(people, settings):
    client = sign_in("bob")
    assert case_page(client, people).status_code == 200
    settings.TWO_FACTOR_REQUIRED = "all"
    assert case_page(client, people)["Location"].startswith(reverse("two-factor-enrol"))


def test_required_for_staff_leaves_others_alone(people, settings):
    settings.TWO_FACTOR_REQUIRED = "staff"
    assert case_page(sign_in("bob"), people).status_code == 200
    admin = sign_in("admin")
    response = admin.get(reverse("staff-users"))
    assert response["Location"].startswith(reverse("two-factor-enrol"))


@pytest.mark.django_db(transaction=True)
async def test_a_half_signed_in_session_gets_no_socket(people, settings):
    from asgiref.sync import sync_to_async
    from channels.testing import WebsocketCommunicator

    from gemma_web.asgi import application

    await sync_to_async(enrolled)(people.bob)
    client = await sync_to_async(sign_in)("bob")
    headers = [
        (b"origin", b"http://localhost"),
        (b"host", b"localhost"),
        (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()),
    ]
    socket = WebsocketCommunicator(application, f"/ws/cases/{people.case.id}/", headers=headers)
    connected, _ = await socket.connect()
    assert not connected
