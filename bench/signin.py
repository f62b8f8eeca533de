"""Sign-in time: the site's hardened sign-in against plain Django's, side by side in one run.

    .venv/bin/python bench/signin.py [--rounds 5] [--per-round 4]

Hardened: the site's login view with Argon2 (argon2-cffi's recommended parameters, as
Django ships them), django-axes (backend + middleware), the session/2FA gate, the audit
trail, then the TOTP step (django-otp). Plain: django.contrib.auth's LoginView, Django's
default PBKDF2 hasher, ModelBackend, no axes, no OTP, no audit. Both through the Django test
client on the same database, interleaved in rounds; prints medians and the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time

import _django

_django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.auth import views as auth_views  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import override_settings  # noqa: E402
from django.urls import path  # noqa: E402
from django_otp.oath import TOTP  # noqa: E402
from django_otp.plugins.otp_totp.models import TOTPDevice  # noqa: E402

from gemma_web import settings as site  # noqa: E402

PASSWORD = "correct horse battery staple"
# The plain side's own URLconf: Django's LoginView and nothing of ours.
urlpatterns = [
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("", auth_views.LoginView.as_view(), name="case-list"),  # where a sign-in lands
]
OURS = ("axes", "django_otp", "analysis.signin")
PLAIN = {
    "ROOT_URLCONF": __name__,
    "PASSWORD_HASHERS": ["django.contrib.auth.hashers.PBKDF2PasswordHasher"],
    "AUTHENTICATION_BACKENDS": ["django.contrib.auth.backends.ModelBackend"],
    "MIDDLEWARE": [m for m in site.MIDDLEWARE if not m.startswith(OURS)],
}


def code_for(device: TOTPDevice) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{totp.token():0{device.digits}d}"


FAST = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def hardened_once(device: TOTPDevice, hashers: list[str] = site.PASSWORD_HASHERS) -> float:
    with override_settings(PASSWORD_HASHERS=hashers):
        return _hardened(device)


def _hardened(device: TOTPDevice) -> float:
    username = device.user.username
    # A TOTP code works once per time step: forget the last one used (outside the timing).
    TOTPDevice.objects.filter(pk=device.pk).update(last_t=-1)
    device.refresh_from_db()
    client, code = Client(), code_for(device)
    started = time.perf_counter()
    first = client.post("/login/", {"username": username, "password": PASSWORD})
    second = client.post("/account/two-factor/verify/", {"code": code})
    elapsed = time.perf_counter() - started
    assert first.status_code == 302 and second.status_code == 302, (first, second)
    assert client.get("/").status_code == 200
    return elapsed


def plain_once(username: str = "plain", hashers: list[str] | None = None) -> float:
    client = Client()
    with override_settings(**{**PLAIN, "PASSWORD_HASHERS": hashers or PLAIN["PASSWORD_HASHERS"]}):
        started = time.perf_counter()
        response = client.post("/login/", {"username": username, "password": PASSWORD})
        elapsed = time.perf_counter() - started
    assert response.status_code == 302, response
    return elapsed


def make_users() -> tuple[TOTPDevice, TOTPDevice]:
    """The real pair, and a pair hashed alike (fast MD5) to show what is not the hash."""
    User = get_user_model()
    with override_settings(PASSWORD_HASHERS=FAST):
        hardened_fast = User.objects.create_user("hardened-fast", password=PASSWORD)
        User.objects.create_user("plain-fast", password=PASSWORD)
    with override_settings(**PLAIN):
        User.objects.create_user("plain", password=PASSWORD)
    settings.PASSWORD_HASHERS = site.PASSWORD_HASHERS  # Argon2 first, as the site runs
    hardened = User.objects.create_user("hardened", password=PASSWORD)
    return tuple(
        TOTPDevice.objects.create(user=user, name="bench", confirmed=True)
        for user in (hardened, hardened_fast)
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--per-round", type=int, default=4)
    args = parser.parse_args()
    device, fast_device = make_users()
    hardened_once(device), plain_once(), hardened_once(fast_device, FAST)  # warm up
    hardened, plain, hardened_fast, plain_fast = [], [], [], []
    for _ in range(args.rounds):  # interleaved so machine noise hits both sides alike
        hardened += [hardened_once(device) for _ in range(args.per_round)]
        plain += [plain_once() for _ in range(args.per_round)]
        hardened_fast += [hardened_once(fast_device, FAST) for _ in range(args.per_round)]
        plain_fast += [plain_once("plain-fast", FAST) for _ in range(args.per_round)]
    h, p = statistics.median(hardened), statistics.median(plain)
    hf, pf = statistics.median(hardened_fast), statistics.median(plain_fast)
    n = len(hardened)
    print(f"hardened (Argon2 + axes + TOTP step + audit): {h * 1000:7.1f} ms median of {n}")
    print(f"plain Django (PBKDF2, ModelBackend):         {p * 1000:7.1f} ms median of {n}")
    print(f"ratio hardened / plain: {h / p:.2f}x")
    print(f"same hash on both sides (MD5): hardened {hf * 1000:.1f} ms, plain {pf * 1000:.1f} ms,"
          f" ratio {hf / pf:.2f}x (axes, TOTP step, gate, audit: all but the hash)")  # fmt: skip
    hasher = site.PASSWORD_HASHERS[0].rsplit(".", 1)[-1]
    from django.contrib.auth.hashers import get_hasher

    argon = get_hasher("argon2")
    print(f"{hasher}: time_cost={argon.time_cost} memory_cost={argon.memory_cost} KiB "
          f"parallelism={argon.parallelism}")  # fmt: skip


if __name__ == "__main__":
    main()
