"""TOTP second factor (django-otp) with a QR code to enrol, and single-use recovery codes."""

from __future__ import annotations

import segno
from django.conf import settings
from django.db import transaction
from django_otp import match_token
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

AUTHENTICATOR = "authenticator"
RECOVERY = "recovery codes"


def pending_device(user) -> TOTPDevice:
    """The unconfirmed authenticator this user is enrolling (made on first use)."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    return device or TOTPDevice.objects.create(user=user, name=AUTHENTICATOR, confirmed=False)


def qr_svg(device: TOTPDevice) -> str:
    """The otpauth:// URI as an inline SVG QR code (no script, no external image)."""
    return segno.make(device.config_url, error="m").svg_inline(scale=4, dark="#111")


def secret_base32(device: TOTPDevice) -> str:
    from base64 import b32encode

    return b32encode(device.bin_key).decode()


@transaction.atomic
def confirm(device: TOTPDevice, code: str) -> list[str] | None:
    """Confirm the authenticator with a code from it; new recovery codes, or None if wrong."""
    if not device.verify_token(code.strip()):
        return None
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    TOTPDevice.objects.filter(user=device.user, confirmed=False).delete()
    return new_recovery_codes(device.user)


def new_recovery_codes(user) -> list[str]:
    """Replace the user's recovery codes; each works once. Shown once, stored as issued."""
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name=RECOVERY, confirmed=True)
    codes = [StaticToken.random_token() for _ in range(settings.RECOVERY_CODES)]
    StaticToken.objects.bulk_create(StaticToken(device=device, token=code) for code in codes)
    return codes


def check(user, code: str):
    """The device that accepts `code` (a recovery code is used up by it), or None."""
    code = "".join(str(code).split())
    return match_token(user, code) if code else None


def is_recovery(device) -> bool:
    return isinstance(device, StaticDevice)


def remove_all(user) -> None:
    """An admin's reset of a lost authenticator: the user enrols again at next sign-in."""
    TOTPDevice.objects.filter(user=user).delete()
    StaticDevice.objects.filter(user=user).delete()


def has_confirmed_authenticator(user) -> bool:
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()
